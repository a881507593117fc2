"""Masking strategies, registered by name and chosen from YAML (``masking: random``).

A strategy is a callable object built from its options (``mask_ratio`` …). Called with the
token grid and batch size, it returns a :class:`TokenMask`. Strategies are pure tensor code:
no Python loops over samples, no host synchronisation.
"""

from __future__ import annotations

from collections.abc import Callable

from terratorch_specmae.masking.base import TokenMask, gather_tokens, num_visible, scatter_mask
from terratorch_specmae.masking.random import RandomMasking
from terratorch_specmae.masking.spatially_consistent import SpatiallyConsistentMasking

MASKING_STRATEGIES: dict[str, Callable[..., object]] = {}


def register_masking(name: str) -> Callable:
    """Class decorator adding a strategy to :data:`MASKING_STRATEGIES` under ``name``."""

    def add(cls):
        if name in MASKING_STRATEGIES:
            raise ValueError(f"A masking strategy named {name!r} is already registered.")
        MASKING_STRATEGIES[name] = cls
        return cls

    return add


def build_masking(name: str, **options):
    """Instantiate the strategy registered as ``name`` with ``options``."""
    if name not in MASKING_STRATEGIES:
        raise ValueError(f"Unknown masking strategy {name!r}; expected one of {sorted(MASKING_STRATEGIES)}.")
    return MASKING_STRATEGIES[name](**options)


register_masking("random")(RandomMasking)
register_masking("spatially_consistent")(SpatiallyConsistentMasking)

__all__ = [
    "MASKING_STRATEGIES",
    "RandomMasking",
    "SpatiallyConsistentMasking",
    "TokenMask",
    "build_masking",
    "gather_tokens",
    "num_visible",
    "register_masking",
    "scatter_mask",
]

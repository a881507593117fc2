"""Masking strategies, registered by name and chosen from YAML (``masking: random``).

A strategy is a :class:`MaskingStrategy` built from its options (``mask_ratio`` …, plus
``bands`` when its constructor asks for them: the model passes its own). The model calls its
``check_grid`` once at build time (a strategy that needs cube tokens refuses 2D patches), then
calls it with the token grid, batch size and device — and, as keywords, ``generator``,
``image`` and training ``progress`` — for a :class:`TokenMask`. Strategies are tensor code
with no Python loops over samples.

Registered: ``random`` (per token, any tokenizer), ``cube_random`` (S2MAE's random 3D
masking; cube tokens only), ``spatially_consistent`` (whole grid cells in every spectral
group), ``saliency`` (SIGMAE's SSDTM) and ``redundant_spectra`` (MRS; band groups only). Add
one with :func:`register_masking`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

from terratorch_specmae.layers.tokens import TokenMask, gather_tokens, scatter_mask
from terratorch_specmae.masking.base import MaskingStrategy, num_visible
from terratorch_specmae.masking.curriculum import Curriculum
from terratorch_specmae.masking.random import CubeRandomMasking, RandomMasking
from terratorch_specmae.masking.redundant_spectra import RedundantSpectraMasking
from terratorch_specmae.masking.saliency import SaliencyMasking, token_saliency
from terratorch_specmae.masking.spatially_consistent import SpatiallyConsistentMasking

MASKING_STRATEGIES: dict[str, Callable[..., object]] = {}


def register_masking(name: str) -> Callable:
    """Class decorator adding a strategy to :data:`MASKING_STRATEGIES` under ``name``."""

    def add(cls):
        if not (isinstance(cls, type) and issubclass(cls, MaskingStrategy)):
            raise TypeError(f"A masking strategy must subclass MaskingStrategy, got {cls!r}.")
        if name in MASKING_STRATEGIES:
            raise ValueError(f"A masking strategy named {name!r} is already registered.")
        MASKING_STRATEGIES[name] = cls
        return cls

    return add


def build_masking(name: str, bands: Sequence[str] | None = None, **options):
    """Instantiate the strategy registered as ``name`` with ``options``; ``bands`` go to those that take them."""
    if name not in MASKING_STRATEGIES:
        raise ValueError(f"Unknown masking strategy {name!r}; expected one of {sorted(MASKING_STRATEGIES)}.")
    cls = MASKING_STRATEGIES[name]
    if "bands" in inspect.signature(cls).parameters:
        if bands is None:
            raise ValueError(f"Masking strategy {name!r} needs the band names (bands=…).")
        options["bands"] = bands
    return cls(**options)


register_masking("random")(RandomMasking)
register_masking("cube_random")(CubeRandomMasking)
register_masking("spatially_consistent")(SpatiallyConsistentMasking)
register_masking("saliency")(SaliencyMasking)
register_masking("redundant_spectra")(RedundantSpectraMasking)

__all__ = [
    "MASKING_STRATEGIES",
    "CubeRandomMasking",
    "Curriculum",
    "MaskingStrategy",
    "SaliencyMasking",
    "token_saliency",
    "RandomMasking",
    "RedundantSpectraMasking",
    "SpatiallyConsistentMasking",
    "TokenMask",
    "build_masking",
    "gather_tokens",
    "num_visible",
    "register_masking",
    "scatter_mask",
]

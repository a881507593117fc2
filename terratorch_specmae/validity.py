"""Which pixel values count as data: the one rule behind the encoders' ``nan_policy`` and the spectral-index code.

A value is missing when it is NaN, ±inf, or of a magnitude above :data:`MAX_ABS_VALUE` (a nodata
sentinel such as float32's −3.4e38 or netCDF's 9.97e36 that a loader did not replace).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# No measurement comes near 1e15 (reflectance, DN, radiance, backscatter, elevation all stay below ~1e7), and
# up to it squares and their sums over millions of pixels (LayerNorm, standardised targets) stay inside float32.
MAX_ABS_VALUE = 1e15


def valid_values(x: torch.Tensor) -> torch.Tensor:
    """Bool mask of ``x``: True where the value is finite and ``|x| <= MAX_ABS_VALUE`` (False for NaN, ±inf)."""
    return x.abs() <= MAX_ABS_VALUE


def describe_invalid(x: torch.Tensor, bands: Sequence[str]) -> str:
    """``"Input has N invalid values (a NaN, b +inf, …) of M, in bands {name: count}"`` for ``x`` ``[B, C, …]``."""
    kinds = {
        "NaN": torch.isnan(x),
        "+inf": torch.isposinf(x),
        "-inf": torch.isneginf(x),
        f"|x| > {MAX_ABS_VALUE:g}": torch.isfinite(x) & (x.abs() > MAX_ABS_VALUE),
    }
    counts = {kind: int(mask.sum()) for kind, mask in kinds.items()}
    invalid = ~valid_values(x)
    per_band = invalid.transpose(0, 1).reshape(x.shape[1], -1).sum(dim=1).tolist()
    in_bands = {band: int(n) for band, n in zip(bands, per_band) if n}
    breakdown = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    return f"Input has {int(invalid.sum())} invalid values ({breakdown}) of {x.numel()}, in bands {in_bands}"

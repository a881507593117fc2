"""Which pixel values count as data: the one rule behind the encoders' ``nan_policy`` and the spectral-index code.

A value is missing when it is NaN, ±inf, or of a magnitude above :data:`MAX_ABS_VALUE` (a nodata
sentinel such as float32's −3.4e38 or netCDF's 9.97e36 that a loader did not replace).
"""

from __future__ import annotations

import math
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


def invalid_input_message(x: torch.Tensor, bands: Sequence[str]) -> str:
    """The encoders' error for invalid values in ``x`` ``[B, C, …]``: what is invalid and where (see
    :func:`describe_invalid`), and the likely cause — a band invalid in every pixel of every image is
    what a normalisation by a standard deviation of 0 (a band constant where its statistics were
    computed) makes of it; scattered values are nodata a loader did not replace."""
    head = f"{describe_invalid(x, bands)}; expected finite pixels with |x| <= {MAX_ABS_VALUE:g}."
    per_band = (~valid_values(x)).transpose(0, 1).reshape(x.shape[1], -1)
    counts, pixels = per_band.sum(dim=1).tolist(), per_band.shape[1]
    whole = [band for band, n in zip(bands, counts) if n == pixels]
    partial = [band for band, n in zip(bands, counts) if 0 < n < pixels]
    advice = []
    if whole and len(whole) < x.shape[1]:  # every band invalid everywhere: a tile of nodata, not a statistic
        advice.append(
            f"Band(s) {whole} are invalid in every pixel: a band the datamodule's normalisation divides by a "
            "standard deviation of 0 (constant where the statistics were computed) becomes all NaN/inf; check the "
            "stds given for them, or drop the band."
        )
    if partial or len(whole) == x.shape[1]:
        advice.append("Replace nodata in the datamodule (no_data_replace) or set nan_policy='fill'.")
    return " ".join([head, *advice])


def check_stds(means: Sequence[float], stds: Sequence[float], names: Sequence[str], source: str) -> None:
    """Refuse a normalisation whose standard deviation is 0, negative or not finite for some band: dividing
    by it makes every pixel of the band NaN/inf. The message names each such band with its mean and std."""
    bad = {
        str(name): (float(mean), float(std))
        for name, mean, std in zip(names, means, stds)
        if not (math.isfinite(float(std)) and float(std) > 0)
    }
    if bad:
        shown = ", ".join(f"{name} (mean {mean:g}, std {std:g})" for name, (mean, std) in bad.items())
        raise ValueError(
            f"{source} has a standard deviation that is not positive for band(s) {shown}; expected a positive std "
            "per band: normalising by it makes every pixel of the band NaN/inf. A band constant where the "
            "statistics were computed: drop it, or give any positive std (e.g. 1)."
        )

"""Spectral indices by band name, from the ``spyndex`` catalogue, computed on raw values.

Indices are resolved through band *names* (``bands.py`` maps every name to spyndex's standard
band key: ``B04``/``RED`` → ``R``, ``B08``/``NIR_BROAD`` → ``N`` …), never through positions.
TerraTorch datamodules standardise images before the model sees them; :func:`denormalize`
undoes that so indices are computed on the sensor's values (reflectance, or DN).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence

import spyndex
import torch

from terratorch_specmae.bands import KNOWN_BANDS, UNNAMED_BAND, band_info, resolve_bands
from terratorch_specmae.validity import valid_values

MISSING_BAND_POLICIES = ("error", "skip")


def standard_band_positions(bands: Sequence[str]) -> dict[str, int]:
    """spyndex band key → position in ``bands``.

    Where a band set has only a narrow NIR (Landsat 8/9 OLI B5, HLS, Sentinel-2 B8A without
    B08), it also stands for spyndex's ``N``, as those sensors' NIR band.
    """
    positions: dict[str, int] = {}
    for i, name in enumerate(bands):
        key = band_info(name).common_name
        if key and key not in positions:
            positions[key] = i
    if "N" not in positions and "N2" in positions:
        positions["N"] = positions["N2"]
    return positions


def index_bands(index: str) -> list[str]:
    """The spyndex band keys an index needs (its constants excluded); unknown names raise."""
    if index not in spyndex.indices:
        close = difflib.get_close_matches(index, list(spyndex.indices), n=5)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(f"Unknown spectral index {index!r}: not in the spyndex catalogue.{hint}")
    return [b for b in spyndex.indices[index].bands if b not in spyndex.constants]


def names_of_key(key: str) -> list[str]:
    """Band names that stand for spyndex band key ``key`` (``"N"`` → B08, NIR_BROAD, and B8A, NIR_NARROW)."""
    keys = (key, "N2") if key == "N" else (key,)  # a narrow NIR stands in for N (see standard_band_positions)
    return [name for name, band in KNOWN_BANDS.items() if band.common_name in keys]


def require_named_bands(bands, indices: Sequence[str], who: str = "SpectralIndices") -> None:
    """Raise a ``ValueError`` when ``bands`` are unnamed (``band_0`` …, a model built from ``in_chans``
    alone), naming the bands ``indices`` need and the names that give them."""
    names = [bands] if isinstance(bands, str) else list(bands)
    unnamed = [b for b in names if isinstance(b, str) and UNNAMED_BAND.match(b)]
    if not unnamed:
        return
    needed = []
    for index in indices:
        keys = index_bands(index)
        described = ", ".join(
            f"{k} ({spyndex.bands[k].long_name}: {'/'.join(names_of_key(k)) or 'a wavelength name'})" for k in keys
        )
        needed.append(f"{index} needs {described}")
    raise ValueError(
        f"{who} needs band names to compute the spectral indices {list(indices)}, but the bands are unnamed "
        f"({names[:3] + ['…'] if len(names) > 3 else names}: a model built from in_chans={len(names)} alone). "
        f"{'; '.join(needed)}. Build the model with bands=[…] (band names or a sensor preset such as "
        "'sentinel2_l2a') instead of in_chans."
    )


def denormalize(x: torch.Tensor, means: Sequence[float] | torch.Tensor, stds: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Undo a datamodule's per-band standardisation: ``x · std + mean`` for ``x`` ``[B, C, H, W]``.

    ``means``/``stds`` as tensors on ``x``'s device cost no copy (lists are copied to the device each call).

    Always in float32 (the result is float32 whatever ``x``'s dtype): in bf16 a reflectance of a few
    thousand keeps only ~3 significant digits, which moves NDVI by about 1 %."""
    if len(means) != x.shape[1] or len(stds) != x.shape[1]:
        raise ValueError(f"Expected {x.shape[1]} means and stds (one per band), got {len(means)} and {len(stds)}.")
    x = x.float()
    mean = torch.as_tensor(means, dtype=torch.float32, device=x.device)[:, None, None]
    std = torch.as_tensor(stds, dtype=torch.float32, device=x.device)[:, None, None]
    with torch.autocast(x.device.type, enabled=False):
        return x * std + mean


class SpectralIndices:
    """Computes named spyndex indices from images whose bands are named ``bands``.

    Args:
        indices: spyndex index names, e.g. ``["NDVI", "NDWI", "NDBI"]``.
        bands: the band names of the images, in order, or a sensor preset.
        missing_bands: ``"error"`` (default) — an index whose bands are absent is an error
            naming them; ``"skip"`` — leave such indices out with a warning (at least one
            index must remain).
        scale: multiplies the raw values first, e.g. ``1e-4`` for Sentinel-2 L2A integers, so
            indices with additive constants (EVI, SAVI …) see reflectance in [0, 1].

    Calling it on ``[B, C, H, W]`` raw values returns ``[B, K, H, W]`` maps of the indices in
    :attr:`names`; where a formula divides by zero, or a band is missing (NaN, ±inf, ``|x| > 1e15``:
    :mod:`terratorch_specmae.validity`), the index is 0, never NaN or inf.
    """

    def __init__(
        self, indices: Sequence[str], bands: str | Sequence[str], missing_bands: str = "error", scale: float = 1.0
    ) -> None:
        if missing_bands not in MISSING_BAND_POLICIES:
            raise ValueError(f"missing_bands must be one of {MISSING_BAND_POLICIES}, got {missing_bands!r}.")
        if not indices:
            raise ValueError("No spectral index requested: expected at least one spyndex index name.")
        require_named_bands(bands, indices)
        self.bands = resolve_bands(bands)
        self.scale = scale
        positions = standard_band_positions(self.bands)
        self.names, self._positions, self._formulas = [], {}, {}
        for index in indices:
            needed = index_bands(index)
            absent = [b for b in needed if b not in positions]
            if absent:
                described = ", ".join(f"{b} ({spyndex.bands[b].long_name})" for b in absent)
                msg = f"{index} needs bands {needed}; the bands {list(self.bands)} lack {described}."
                if missing_bands == "error":
                    raise ValueError(msg + " Set missing_bands='skip' to compute the other indices only.")
                warnings.warn(msg + " Skipping it.", stacklevel=2)
                continue
            self.names.append(index)
            self._positions[index] = {b: positions[b] for b in needed}
            # the catalogue's formula, compiled once: spyndex.computeIndex evaluates the same
            # expression but reloads the catalogue on every call (~2 ms each, more than the maths)
            self._formulas[index] = compile(spyndex.indices[index].formula, f"<spyndex {index}>", "eval")
        if not self.names:
            raise ValueError(f"None of the indices {list(indices)} can be computed from the bands {list(self.bands)}.")
        self._constants = {k: c.default for k, c in spyndex.constants.items() if c.default is not None}

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        if raw.ndim != 4 or raw.shape[1] != len(self.bands):
            raise ValueError(f"Expected raw images [B, {len(self.bands)}, H, W], got shape {tuple(raw.shape)}.")
        raw = raw.float()
        raw = torch.where(valid_values(raw), raw, torch.nan) * self.scale  # ±inf and nodata sentinels are missing, as NaN
        maps = []
        for index in self.names:
            params = {**self._constants, **{b: raw[:, i] for b, i in self._positions[index].items()}}
            with torch.autocast(raw.device.type, enabled=False):
                value = eval(self._formulas[index], {}, params)  # noqa: S307 — spyndex's own formula
            maps.append(torch.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0))
        return torch.stack(maps, dim=1)

    def __repr__(self) -> str:
        return f"SpectralIndices({self.names}, bands={list(self.bands)})"

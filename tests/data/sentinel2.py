"""What the fake Sentinel-2 data sets share: band levels, texture, GeoTIFF writing, the script entry.

Pixel values
------------
Everything is generated from ``numpy.random.default_rng(SEED)`` (one generator per data set), so
the output is byte-for-byte reproducible.  Sentinel-2 values are uint16 reflectance x 10^4 inside
0-2700.  Each band has its own level ``S2_BAND_LEVEL[band]``, close to the band's typical mean
over land (B10 ~ 30, B09 ~ 730, visible bands ~ 950-1400, NIR ~ 2300-2600) but nudged so that
any two levels are at least 90 apart, and every pixel of a band lies within ``S2_MAX_DEVIATION``
(44) of its level.  So the channel order a reader returns can be checked from the data alone:
:func:`band_from_value` maps a pixel value or a channel mean back to the band name.
Sentinel-1 values are float32 backscatter in dB (VV ~ -11 dB, VH ~ -18 dB).

Nothing here is real imagery: only the layout, file names, band sizes and dtypes are real.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import rasterio

SEED = 0

#: Sentinel-2 band names in wavelength order.
S2_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07",
    "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip
#: Band-specific level of every fake Sentinel-2 band (reflectance x 1e4):
#: plausible means over land, at least 90 apart so that bands are identifiable.
S2_BAND_LEVEL: dict[str, int] = {
    "B10": 30, "B09": 730, "B04": 950, "B03": 1040, "B02": 1130, "B12": 1220,
    "B05": 1310, "B01": 1400, "B11": 1820, "B06": 2000, "B08": 2280,
    "B07": 2380, "B8A": 2590,
}  # fmt: skip
#: Largest distance of a fake pixel from its band's level.
S2_MAX_DEVIATION = 44

#: Native ground sampling distance (m) of each Sentinel-2 band.
S2_GSD: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip


def band_from_value(value: float) -> str:
    """Return the Sentinel-2 band name whose fake level is closest to ``value``.

    Works on any pixel or channel mean of an S2 band written by these generators.
    """
    return min(S2_BANDS, key=lambda b: abs(S2_BAND_LEVEL[b] - float(value)))


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Spatially correlated texture with values in [-30, 30].

    Sum of two random low-frequency plane waves (amplitude 20) and a blocky
    "parcel" pattern (4x4-pixel blocks, +-10).  There is deliberately no
    per-pixel noise: it would not compress and the output must stay tiny.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    waves = np.zeros((h, w))
    for _ in range(2):
        fy, fx = rng.uniform(0.5, 2.0, size=2) * 2 * np.pi / max(h, w)
        phase = rng.uniform(0, 2 * np.pi)
        waves += np.sin(fy * yy + fx * xx + phase)
    blocks = rng.integers(-10, 11, size=(-(-h // 4), -(-w // 4)))
    blocks = blocks.repeat(4, axis=0).repeat(4, axis=1)[:h, :w]
    return 10.0 * waves + blocks


def s2_band(
    rng: np.random.Generator,
    band: str,
    scene: np.ndarray,
    offset: float = 0.0,
) -> np.ndarray:
    """One uint16 S2 band: band level + offset + band-specific share of ``scene``.

    ``scene`` comes from :func:`texture` (possibly block-averaged, possibly
    plus an OSCD change signal); ``|offset| + max|scene|`` must stay within
    ``S2_MAX_DEVIATION``.  Dark bands (level < 1000) vary proportionally less.
    """
    level = S2_BAND_LEVEL[band]
    gain = rng.uniform(0.5, 1.0) * min(1.0, level / 1000.0)
    value = level + gain * (offset + scene)
    return np.clip(np.rint(value), 0, 10000).astype(np.uint16)


def downsample(array: np.ndarray, factor: int) -> np.ndarray:
    """Block-average a 2-D array by an integer factor."""
    h, w = array.shape
    return array.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def north_up(x0: float, y0: float, xres: float, yres: float) -> rasterio.Affine:
    """Affine transform of a north-up grid with upper-left corner (x0, y0)."""
    return rasterio.Affine(xres, 0.0, x0, 0.0, -yres, y0)


def write_geotiff(
    path: Path,
    data: np.ndarray,
    crs: str,
    transform: rasterio.Affine,
) -> None:
    """Write a (C, H, W) or (H, W) array as a deflate-compressed GeoTIFF."""
    if data.ndim == 2:
        data = data[None]
    predictor = 3 if np.issubdtype(data.dtype, np.floating) else 2
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        compress="deflate",
        predictor=predictor,
        zlevel=9,
    ) as dst:
        dst.write(data)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def dir_stats(root: Path) -> tuple[int, int]:
    """(number of files, total bytes) under ``root``."""
    n = size = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            n += 1
            size += os.path.getsize(os.path.join(dirpath, name))
    return n, size


def script(make: Callable[[Path], Path], description: str, argv: Sequence[str] | None = None) -> int:
    """The ``python tests/data/<name>/data.py OUT_DIR`` entry: write the data set into OUT_DIR, print a summary."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("out_dir", type=Path, help="folder to write into (the dataset's root=)")
    args = parser.parse_args(argv)
    root = make(args.out_dir)
    n, size = dir_stats(root)
    print(f"{root}  ({n} files, {size / 1e6:.2f} MB)")
    return 0

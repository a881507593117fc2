#!/usr/bin/env python3
"""Write a tiny fake SSL4EO-S12 (Sentinel-2) laid out as TorchGeo's ``torchgeo.datasets.SSL4EOS12`` reads it.

    python tests/data/ssl4eo/data.py OUT_DIR      # or make_ssl4eo(root) from a test

::

    root/
      s2c/0000000/<date>T<time>_<date>T<time>_T<tile>/B1.tif B2.tif ... B8A.tif B9.tif B10.tif B11.tif B12.tif
      s2c/0000001/...                      (one folder per location, 7 digits, from 0000000)
      s2a/...                               (the same, 12 bands: no B10)

* Four season folders per location, named as SSL4EO-S12's (TorchGeo parses the leading
  ``YYYYMMDDTHHMMSS``).
* Each band is a single-band uint16 GeoTIFF of 264 × 264 px at 10 m (SSL4EO-S12 resampled every
  band to 10 m), in a UTM CRS. Pixel values: ``tests/data/sentinel2.py`` (each band has its own
  level, so the channel order a reader returns can be checked from the data); each season adds
  its own offset (0, 10, 20, 30) so the season a sample came from can be told too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make tests/ importable (and shadow this file's own name)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.sentinel2 import S2_BANDS, SEED, north_up, s2_band, script, texture, write_geotiff  # noqa: E402

SSL4EO_SIZE = 264
SSL4EO_SEASONS = (
    "20200305T100031_20200305T100033_T32TQM",
    "20200614T100031_20200614T100027_T32TQM",
    "20200903T100021_20200903T100022_T32TQM",
    "20201207T101411_20201207T101406_T32TQM",
)
SEASON_OFFSET = (0.0, 10.0, 20.0, 30.0)
SSL4EO_CRS = "EPSG:32632"


def file_band(band: str) -> str:
    """B01 → B1 (SSL4EO-S12's file names), B8A and B10-B12 unchanged."""
    return band[0] + band[1:].lstrip("0") if band[1] == "0" else band


def make_ssl4eo(root: Path, locations: int = 3, splits: tuple[str, ...] = ("s2c", "s2a"), size: int = SSL4EO_SIZE) -> Path:
    rng = np.random.default_rng(SEED)
    for split in splits:
        bands = S2_BANDS if split == "s2c" else tuple(b for b in S2_BANDS if b != "B10")
        for location in range(locations):
            scene = texture(rng, size, size) * 0.4  # within ±12: plus a season's offset ≤ 30 stays inside ±44
            for season, offset in zip(SSL4EO_SEASONS, SEASON_OFFSET):
                folder = root / split / f"{location:07d}" / season
                transform = north_up(500000.0 + 3000 * location, 5000000.0, 10.0, 10.0)
                for band in bands:
                    write_geotiff(folder / f"{file_band(band)}.tif", s2_band(rng, band, scene, offset), SSL4EO_CRS, transform)
    return root


if __name__ == "__main__":
    sys.exit(script(make_ssl4eo, __doc__.splitlines()[0]))

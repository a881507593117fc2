#!/usr/bin/env python3
"""Write a tiny fake fMoW-Sentinel laid out as SatMAE distributes it (TorchGeo has no reader for it).

    python tests/data/fmow_sentinel/data.py OUT_DIR      # or make_fmow_sentinel(root) from a test

::

    OUT_DIR/fmow-sentinel/            ← the datamodule's root
      train.csv  val.csv  test_gt.csv
      train/<category>/<category>_<location>/<category>_<location>_<image>.tif
      val/…  test/…

* CSV header ``,category,location_id,image_id,timestamp,polygon,image_path`` (a pandas index
  column first), ``image_path`` relative to the folder above ``fmow-sentinel/``
  (``fmow-sentinel/train/airport/airport_0/airport_0_6.tif``), as SatMAE's CSVs.
* Each image: one 13-band uint16 GeoTIFF (B01 … B8A, B09, B10, B11, B12, wavelength order) of its
  own size (fMoW crops differ: here 40–72 px), EPSG:4326 like fMoW's. Pixel values:
  ``tests/data/sentinel2.py`` (one level per band, so the band order read can be checked).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make tests/ importable (and shadow this file's own name)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.sentinel2 import S2_BANDS, SEED, north_up, s2_band, script, texture, write_geotiff

FMOW_CATEGORIES = ("airport", "crop_field", "lake_or_pond")
FMOW_CSV = {"train": "train.csv", "val": "val.csv", "test": "test_gt.csv"}
FMOW_IMAGES = {"train": 6, "val": 3, "test": 2}
FMOW_SIZES = ((40, 52), (64, 48), (72, 72), (48, 60))


def make_fmow_sentinel(out_dir: Path) -> Path:
    """Write the fake corpus under ``out_dir/fmow-sentinel``; returns that folder (the datamodule's root)."""
    rng = np.random.default_rng(SEED)
    root = out_dir / "fmow-sentinel"
    root.mkdir(parents=True, exist_ok=True)
    for split, n in FMOW_IMAGES.items():
        rows = []
        for i in range(n):
            category = FMOW_CATEGORIES[i % len(FMOW_CATEGORIES)]
            location, image_id = i // 2, i % 2
            h, w = FMOW_SIZES[i % len(FMOW_SIZES)]
            scene = texture(rng, h, w)
            data = np.stack([s2_band(rng, band, scene) for band in S2_BANDS])
            rel = f"fmow-sentinel/{split}/{category}/{category}_{location}/{category}_{location}_{image_id}.tif"
            write_geotiff(out_dir / rel, data, "EPSG:4326", north_up(-60.0 + i, -8.0, 1e-4, 1e-4))
            polygon = f"POLYGON (({-60 + i} -8, {-60 + i} -8.01, {-59.99 + i} -8.01, {-60 + i} -8))"
            rows.append([i, category, location, image_id, f"2017-0{1 + i % 9}-15T13:00:00Z", polygon, rel])
        with open(root / FMOW_CSV[split], "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["", "category", "location_id", "image_id", "timestamp", "polygon", "image_path"])
            writer.writerows(rows)
    return root


if __name__ == "__main__":
    sys.exit(script(lambda out: make_fmow_sentinel(out).parent, __doc__.splitlines()[0]))

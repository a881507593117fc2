#!/usr/bin/env python3
"""Write a tiny fake HLS burn-scars dataset laid out as TerraTorch's Prithvi tutorials read it.

    python tests/data/burn_scars/data.py OUT_DIR      # or make_burn_scars(root) from a test

The tutorials point ``GenericNonGeoSegmentationDataModule`` at ``hls_burn_scars/data`` (images
and masks side by side, found by ``*_merged.tif`` / ``*.mask.tif``) and at split files that list
one scene name per line, without the suffixes::

    root/hls_burn_scars/
      data/subsetted_512x512_HLS.S30.T10SEH.2018190.v1.4_merged.tif    6 bands, float32
           subsetted_512x512_HLS.S30.T10SEH.2018190.v1.4.mask.tif      1 band, int16
           ...
      splits/train.txt  val.txt  test.txt

Images: the six HLS bands ``BLUE GREEN RED NIR_NARROW SWIR_1 SWIR_2`` as reflectance in 0–1
(around the tutorial's means), with a burn scar — low NIR, high SWIR — in a random rectangle;
masks: 1 inside the scar, 0 outside, -1 (nodata) on a few pixels. ``size`` pixels square (the
real chips are 512 × 512; the tests use 128 to keep a ViT-L step short). 4 train, 4 val and
2 test scenes, from six MGRS tiles.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

MEANS = np.array([0.033, 0.057, 0.059, 0.232, 0.197, 0.119], dtype=np.float32)
SCAR = np.array([0.04, 0.05, 0.07, 0.12, 0.28, 0.24], dtype=np.float32)
TILES = ["T10SEH", "T10SDH", "T11SKA", "T11SLT", "T10TEK", "T12SVD"]
SPLITS = {"train": 4, "val": 4, "test": 2}


def make_burn_scars(root: str | Path, size: int = 128, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    base = Path(root) / "hls_burn_scars"
    (base / "data").mkdir(parents=True, exist_ok=True)
    (base / "splits").mkdir(exist_ok=True)
    profile = {"driver": "GTiff", "width": size, "height": size, "crs": "EPSG:32610",
               "transform": from_origin(500_000, 4_200_000, 30, 30)}  # fmt: skip
    n = 0
    for split, count in SPLITS.items():
        names = []
        for _ in range(count):
            name = f"subsetted_512x512_HLS.S30.{TILES[n % len(TILES)]}.20{18 + n % 4}{190 + n:03d}.v1.4"
            n += 1
            image = MEANS[:, None, None] * (1 + 0.2 * rng.standard_normal((6, size, size)).astype(np.float32))
            mask = np.zeros((size, size), dtype=np.int16)
            r0, c0 = rng.integers(0, size // 2, 2)
            r1, c1 = r0 + rng.integers(size // 8, size // 2), c0 + rng.integers(size // 8, size // 2)
            image[:, r0:r1, c0:c1] = SCAR[:, None, None] * (1 + 0.1 * rng.standard_normal((6, r1 - r0, c1 - c0)))
            mask[r0:r1, c0:c1] = 1
            mask[rng.integers(0, size, 5), rng.integers(0, size, 5)] = -1
            with rasterio.open(base / "data" / f"{name}_merged.tif", "w", count=6, dtype="float32", **profile) as f:
                f.write(np.clip(image, 0, 1).astype(np.float32))
            with rasterio.open(base / "data" / f"{name}.mask.tif", "w", count=1, dtype="int16", **profile) as f:
                f.write(mask[None])
            names.append(name)
        (base / "splits" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return base


if __name__ == "__main__":
    make_burn_scars(sys.argv[1] if len(sys.argv) > 1 else ".")

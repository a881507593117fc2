#!/usr/bin/env python3
"""Write a tiny fake EuroSAT laid out as TorchGeo 0.8.1's ``torchgeo.datasets.EuroSAT`` reads it.

    python tests/data/eurosat/data.py OUT_DIR      # or make_eurosat(root) from a test

The dataset and its datamodule construct with ``download=False`` (and ``checksum=False``) without
attempting any download, and return samples with the real shapes and dtypes; pixel values are
described in ``tests/data/sentinel2.py`` (each band has its own level).

::

    root/
      eurosat-train.txt  eurosat-val.txt  eurosat-test.txt
      ds/images/remote_sensing/otherDatasets/sentinel_2/tif/
        AnnualCrop/AnnualCrop_1.tif ... (one folder per class, 10 folders)

* All 10 real class folders (``AnnualCrop, Forest, HerbaceousVegetation,
  Highway, Industrial, Pasture, PermanentCrop, Residential, River, SeaLake``;
  TorchGeo's label = index in that sorted order) hold
  ``<Class>_<n>.tif`` files: 2 train + 1 val + 1 test per class, i.e. 20/10/10
  samples.  Every class must appear in every split, because TorchGeo builds
  the split on top of torchvision's ``ImageFolder``, which refuses a class
  folder without any file of the split.
* Each tif is a 13-band 64x64 uint16 GeoTIFF (UTM CRS, 10 m pixels) whose
  bands are stored in the real EuroSAT file order ``B01, B02, B03, B04, B05,
  B06, B07, B08, B09, B10, B11, B12, B8A`` (B8A last), which is also
  ``EuroSAT.all_band_names`` in TorchGeo 0.8.1.
* The split files list one image per line with a ``.jpg`` suffix, like the
  original lists (TorchGeo replaces ``.jpg`` by ``.tif`` when reading them).
  TorchGeo's ``_verify()`` only needs the split file and the ``ds/...`` folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make tests/ importable (and shadow this file's own name)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.sentinel2 import SEED, north_up, s2_band, script, texture, write_geotiff, write_text  # noqa: E402

# TorchGeo 0.8.1 torchgeo/datasets/eurosat.py
EUROSAT_BASE_DIR = os.path.join("ds", "images", "remote_sensing", "otherDatasets", "sentinel_2", "tif")
EUROSAT_CLASSES: tuple[str, ...] = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
)  # fmt: skip
#: Band order inside each EuroSAT multi-band tif (B8A is the 13th band).
EUROSAT_FILE_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07",
    "B08", "B09", "B10", "B11", "B12", "B8A",
)  # fmt: skip
EUROSAT_SPLIT_FILES = {
    "train": "eurosat-train.txt",
    "val": "eurosat-val.txt",
    "test": "eurosat-test.txt",
}
#: Images per class written for each split.
EUROSAT_PER_CLASS = {"train": 2, "val": 1, "test": 1}
EUROSAT_SIZE = 64


def make_eurosat(root: Path) -> Path:
    """Write a fake EuroSAT (13-band, 64x64 uint16 GeoTIFFs) into ``root``.

    Returns ``root``, to be passed as ``torchgeo.datasets.EuroSAT(root=...)``.
    """
    root = Path(root)
    rng = np.random.default_rng(SEED)
    img_root = root / EUROSAT_BASE_DIR
    split_lines: dict[str, list[str]] = {s: [] for s in EUROSAT_SPLIT_FILES}
    for ci, cls in enumerate(EUROSAT_CLASSES):
        (img_root / cls).mkdir(parents=True, exist_ok=True)
        number = 1
        for split in ("train", "val", "test"):
            for _ in range(EUROSAT_PER_CLASS[split]):
                scene = texture(rng, EUROSAT_SIZE, EUROSAT_SIZE)
                offset = float(rng.uniform(-8, 8))
                bands = np.stack([s2_band(rng, b, scene, offset) for b in EUROSAT_FILE_BANDS])
                # Real EuroSAT tiles come from many UTM zones at ~10 m / pixel.
                epsg = 32629 + (ci % 7)
                x0 = 300000.0 + 640.0 * number + 10000.0 * ci
                y0 = 5000000.0 + 640.0 * number
                name = f"{cls}_{number}"
                write_geotiff(
                    img_root / cls / f"{name}.tif",
                    bands,
                    f"EPSG:{epsg}",
                    north_up(x0, y0, 10.0, 10.0),
                )
                split_lines[split].append(f"{name}.jpg")
                number += 1
    for split, fname in EUROSAT_SPLIT_FILES.items():
        write_text(root / fname, "\n".join(split_lines[split]) + "\n")
    return root


if __name__ == "__main__":
    sys.exit(script(make_eurosat, "Write a tiny fake EuroSAT in TorchGeo 0.8.1's on-disk layout."))

#!/usr/bin/env python3
"""Write a tiny fake OSCD laid out as TorchGeo 0.8.1's ``torchgeo.datasets.OSCD`` reads it.

    python tests/data/oscd/data.py OUT_DIR      # or make_oscd(root) from a test

The dataset (``split='train'|'test'``) and its datamodule construct with ``download=False`` (and
``checksum=False``) without attempting any download, and return samples with the real shapes and
dtypes; pixel values are described in ``tests/data/sentinel2.py`` (each band has its own level).

::

    root/
      Onera Satellite Change Detection dataset - Images/
        train.txt  test.txt  all.txt           (comma-separated region names)
        <region>/dates.txt                     ("date_1: YYYYMMDD", "date_2: ...")
        <region>/imgs_1_rect/B01.tif ... B12.tif, B8A.tif   (13 files)
        <region>/imgs_2_rect/B01.tif ... B12.tif, B8A.tif
      Onera Satellite Change Detection dataset - Train Labels/<region>/cm/
        cm.png  <region>-cm.tif
      Onera Satellite Change Detection dataset - Test Labels/<region>/cm/
        cm.png  <region>-cm.tif

* 4 train regions (aguasclaras, bercy, bordeaux, nantes) and 4 test regions
  (brasilia, montpellier, norcia, rio), each with its own size between
  128 and 150 px per side so that 128x128 crops always fit.
* Band files are single-band uint16 GeoTIFFs, all bands resampled to the same
  10 m grid as in the real ``imgs_*_rect`` folders (TorchGeo reads them with
  PIL, in the order ``B01..B08, B8A, B09..B12``).  The raw ``imgs_1``/``imgs_2``
  folders and the ``pair/`` RGB previews of the real archive are not written:
  TorchGeo does not read them.
* Change labels: ``cm/cm.png`` is an 8-bit grayscale PNG with 0 = no change and
  255 = change (what TorchGeo reads, clamping it to {0, 1});
  ``cm/<region>-cm.tif`` carries the same map in the original GeoTIFF encoding
  1 = no change, 2 = change.  Every map has both classes.  The second date
  is slightly brighter than the first (+4..8 in reflectance x 10^4) inside the
  changed area.
* Label folders are what defines a split for TorchGeo (it globs
  ``... - <Split> Labels/*/``); ``train.txt``/``test.txt`` mirror the real
  archive.  ``_verify()`` is satisfied by any non-zip path matching
  ``**/*Onera*`` under ``root``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as a script: make tests/ importable (and shadow this file's own name)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.sentinel2 import S2_BANDS, SEED, north_up, s2_band, script, texture, write_geotiff, write_text  # noqa: E402

# torchgeo/datasets/oscd.py
OSCD_IMAGES_DIR = "Onera Satellite Change Detection dataset - Images"
OSCD_LABELS_DIR = {
    "train": "Onera Satellite Change Detection dataset - Train Labels",
    "test": "Onera Satellite Change Detection dataset - Test Labels",
}
#: region -> (height, width, EPSG code, date_1, date_2)
OSCD_REGIONS: dict[str, dict[str, tuple[int, int, int, str, str]]] = {
    "train": {
        "aguasclaras": (140, 150, 32723, "20160314", "20170325"),
        "bercy": (136, 144, 32631, "20150806", "20171006"),
        "bordeaux": (148, 132, 32630, "20151211", "20180330"),
        "nantes": (130, 140, 32630, "20150807", "20170906"),
    },
    "test": {
        "brasilia": (144, 138, 32723, "20151120", "20170701"),
        "montpellier": (132, 150, 32631, "20150807", "20171015"),
        "norcia": (140, 130, 32633, "20160822", "20161101"),
        "rio": (128, 136, 32723, "20160419", "20170825"),
    },
}


def _change_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Boolean change map: a few random rectangles (roughly 5-20 % change)."""
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(3, 6))):
        rh, rw = rng.integers(8, 28, size=2)
        y, x = rng.integers(0, h - rh), rng.integers(0, w - rw)
        mask[y : y + rh, x : x + rw] = True
    # Make sure a central 128x128 crop (the test datamodule's) sees change too.
    cy, cx = h // 2, w // 2
    mask[cy - 6 : cy + 6, cx - 6 : cx + 6] = True
    return mask


def make_oscd(root: Path) -> Path:
    """Write a fake OSCD (13 rectified uint16 bands x 2 dates, change maps).

    Returns ``root``, to be passed as ``torchgeo.datasets.OSCD(root=...)``.
    """
    root = Path(root)
    rng = np.random.default_rng(SEED)
    images = root / OSCD_IMAGES_DIR
    for split, regions in OSCD_REGIONS.items():
        for region, (h, w, epsg, date1, date2) in regions.items():
            crs = f"EPSG:{epsg}"
            transform = north_up(400000.0, 6000000.0, 10.0, 10.0)
            change = _change_mask(rng, h, w)
            scene = texture(rng, h, w)
            for date in (1, 2):
                offset = float(rng.uniform(-4, 4))
                # "New construction": the second date is brighter where changed.
                date_scene = scene + 8.0 * change if date == 2 else scene
                folder = images / region / f"imgs_{date}_rect"
                for band in S2_BANDS:
                    data = s2_band(rng, band, date_scene, offset)
                    write_geotiff(folder / f"{band}.tif", data, crs, transform)
            write_text(
                images / region / "dates.txt",
                f"date_1: {date1}\ndate_2: {date2}\n",
            )
            cm_dir = root / OSCD_LABELS_DIR[split] / region / "cm"
            cm_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(change.astype(np.uint8) * 255).save(cm_dir / "cm.png")
            write_geotiff(
                cm_dir / f"{region}-cm.tif",
                (change.astype(np.uint8) + 1),
                crs,
                transform,
            )
    train = list(OSCD_REGIONS["train"])
    test = list(OSCD_REGIONS["test"])
    write_text(images / "train.txt", ",".join(train) + "\n")
    write_text(images / "test.txt", ",".join(test) + "\n")
    write_text(images / "all.txt", ",".join(train + test) + "\n")
    return root


if __name__ == "__main__":
    sys.exit(script(make_oscd, "Write a tiny fake OSCD in TorchGeo 0.8.1's on-disk layout."))

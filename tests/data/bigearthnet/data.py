#!/usr/bin/env python3
"""Write a tiny fake BigEarthNet v1 laid out as TorchGeo 0.8.1's ``torchgeo.datasets.BigEarthNet`` reads it.

    python tests/data/bigearthnet/data.py OUT_DIR      # or make_bigearthnet(root) from a test

The v1 class, not ``BigEarthNetV2``.  The dataset and its datamodule construct with
``download=False`` (and ``checksum=False``) without attempting any download, for any ``bands``
('s1', 's2', 'all') and ``num_classes`` (19, 43), and return samples with the real shapes and
dtypes; pixel values are described in ``tests/data/sentinel2.py`` (each band has its own level).

::

    root/
      bigearthnet-train.csv  bigearthnet-val.csv  bigearthnet-test.csv
      BigEarthNet-v1.0/<S2 patch>/<S2 patch>_B01.tif ... _B12.tif, _B8A.tif,
                                  <S2 patch>_labels_metadata.json
      BigEarthNet-S1-v1.0/<S1 patch>/<S1 patch>_VH.tif, _VV.tif,
                                     <S1 patch>_labels_metadata.json

* S2 patch names look like ``S2A_MSIL2A_20170613T101031_<row>_<col>``, S1 patch
  names like ``S1A_IW_GRDH_1SDV_20170613T165043_33UUP_<row>_<col>``.
* S2: 12 single-band uint16 GeoTIFFs per patch (no B10) at native size:
  10 m bands B02, B03, B04, B08 are 120x120; 20 m bands B05, B06, B07, B8A,
  B11, B12 are 60x60; 60 m bands B01, B09 are 20x20 (TorchGeo resamples all
  of them to 120x120 with bilinear interpolation).
* S1: VV and VH float32 120x120 GeoTIFFs (dB).
* ``*_labels_metadata.json`` (S2 and S1 copies) hold ``"labels"``: a list of
  CORINE class names from the 43-class nomenclature (several per patch, at
  least one of which has a 19-class equivalent), plus the usual metadata keys.
* Each split CSV has one ``<S2 patch>,<S1 patch>`` line per sample, no header:
  4 patches per split (12 in all).  TorchGeo's ``_verify()`` needs all three
  CSVs plus the image folder(s) of the requested ``bands``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make tests/ importable (and shadow this file's own name)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.sentinel2 import (  # noqa: E402
    S2_BANDS,
    S2_GSD,
    SEED,
    downsample,
    north_up,
    s2_band,
    script,
    texture,
    write_geotiff,
    write_text,
)

# torchgeo/datasets/bigearthnet.py, class BigEarthNet
BEN_S2_DIR = "BigEarthNet-v1.0"
BEN_S1_DIR = "BigEarthNet-S1-v1.0"
BEN_SPLIT_FILES = {
    "train": "bigearthnet-train.csv",
    "val": "bigearthnet-val.csv",
    "test": "bigearthnet-test.csv",
}
BEN_S2_BANDS: tuple[str, ...] = tuple(b for b in S2_BANDS if b != "B10")
BEN_SIZE_10M = 120
BEN_PATCHES_PER_SPLIT = 4
BEN_S2_PREFIX = "S2A_MSIL2A_20170613T101031"
BEN_S1_PREFIX = "S1A_IW_GRDH_1SDV_20170613T165043_33UUP"
BEN_CRS = "EPSG:32633"  # tile 33UUP
#: Multi-label sets (CORINE 43-class names) cycled over the patches.  Every set
#: has at least one class with a 19-class equivalent; a few also contain
#: classes that the 19-class nomenclature drops (e.g. road/rail, airports).
BEN_LABEL_SETS: tuple[tuple[str, ...], ...] = (
    ("Non-irrigated arable land", "Broad-leaved forest", "Water courses"),
    ("Discontinuous urban fabric", "Industrial or commercial units",
     "Road and rail networks and associated land"),
    ("Coniferous forest", "Mixed forest", "Transitional woodland/shrub"),
    ("Pastures", "Complex cultivation patterns",
     "Land principally occupied by agriculture, with significant areas of natural vegetation"),
    ("Sea and ocean", "Beaches, dunes, sands", "Coastal lagoons"),
    ("Vineyards", "Olive groves", "Sclerophyllous vegetation"),
    ("Natural grassland", "Moors and heathland", "Peatbogs", "Bare rock"),
    ("Water bodies", "Inland marshes", "Agro-forestry areas"),
    ("Continuous urban fabric", "Green urban areas", "Airports"),
    ("Salt marshes", "Intertidal flats", "Estuaries", "Salines"),
    ("Fruit trees and berry plantations", "Permanently irrigated land",
     "Annual crops associated with permanent crops"),
    ("Sparsely vegetated areas", "Mineral extraction sites", "Rice fields"),
)  # fmt: skip


def _ben_metadata(labels: Sequence[str], ulx: float, uly: float, extra: dict[str, str]) -> str:
    meta = {
        "labels": list(labels),
        "coordinates": {
            "ulx": ulx,
            "uly": uly,
            "lrx": ulx + 1200,
            "lry": uly - 1200,
        },
        "projection": "EPSG:32633 (WGS 84 / UTM zone 33N)",
        **extra,
    }
    return json.dumps(meta, indent=4)


def make_bigearthnet(root: Path) -> Path:
    """Write a fake BigEarthNet v1 (S2 + S1 folders, split CSVs) into ``root``.

    Returns ``root``, to be passed as ``torchgeo.datasets.BigEarthNet(root=...)``
    for any ``bands`` ('s1', 's2', 'all') and ``num_classes`` (19, 43).
    """
    root = Path(root)
    rng = np.random.default_rng(SEED)
    size = BEN_SIZE_10M
    k = 0
    for csv_name in BEN_SPLIT_FILES.values():
        lines = []
        for _ in range(BEN_PATCHES_PER_SPLIT):
            row, col = 60 + k // 6, 30 + k % 6
            s2_name = f"{BEN_S2_PREFIX}_{row}_{col}"
            s1_name = f"{BEN_S1_PREFIX}_{row}_{col}"
            labels = BEN_LABEL_SETS[k % len(BEN_LABEL_SETS)]
            ulx = 300000.0 + 1200.0 * col
            uly = 5900000.0 - 1200.0 * row

            # Sentinel-2: one uint16 file per band at its native resolution.
            scene = texture(rng, size, size)
            offset = float(rng.uniform(-8, 8))
            s2_dir = root / BEN_S2_DIR / s2_name
            for band in BEN_S2_BANDS:
                gsd = S2_GSD[band]
                band_scene = downsample(scene, gsd // 10)
                write_geotiff(
                    s2_dir / f"{s2_name}_{band}.tif",
                    s2_band(rng, band, band_scene, offset),
                    BEN_CRS,
                    north_up(ulx, uly, float(gsd), float(gsd)),
                )
            write_text(
                s2_dir / f"{s2_name}_labels_metadata.json",
                _ben_metadata(
                    labels,
                    ulx,
                    uly,
                    {
                        "tile_source": "S2A_MSIL1C_20170613T101031_N0205_R022_T33UUP_20170613T101525",
                        "acquisition_date": "2017-06-13 10:10:31",
                    },
                ),
            )

            # Sentinel-1: VV and VH float32 backscatter (dB) at 10 m.
            s1_dir = root / BEN_S1_DIR / s1_name
            for pol, mean_db in (("VV", -11.0), ("VH", -18.0)):
                speckle = rng.normal(0.0, 0.5, size=(size, size))
                db = mean_db + scene / 10.0 + speckle
                db = (np.round(db * 4) / 4).astype(np.float32)  # compresses well
                write_geotiff(
                    s1_dir / f"{s1_name}_{pol}.tif",
                    db,
                    BEN_CRS,
                    north_up(ulx, uly, 10.0, 10.0),
                )
            write_text(
                s1_dir / f"{s1_name}_labels_metadata.json",
                _ben_metadata(
                    labels,
                    ulx,
                    uly,
                    {
                        "scene_source": "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017006_01C5D6_A8B4",
                        "corresponding_s2_patch": s2_name,
                        "acquisition_time": "2017-06-13T16:50:43",
                    },
                ),
            )
            lines.append(f"{s2_name},{s1_name}")
            k += 1
        write_text(root / csv_name, "\n".join(lines) + "\n")
    return root


if __name__ == "__main__":
    sys.exit(script(make_bigearthnet, "Write a tiny fake BigEarthNet v1 in TorchGeo 0.8.1's on-disk layout."))

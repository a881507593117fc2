"""Write tiny fake copies of EuroSAT, BigEarthNet (v1) and OSCD for smoke tests.

The three ``make_*`` functions write a few MB of synthetic rasters laid out
exactly as TorchGeo 0.8.1's readers expect them on disk
(``torchgeo.datasets.EuroSAT``, ``torchgeo.datasets.BigEarthNet`` -- the v1
class, not ``BigEarthNetV2`` -- and ``torchgeo.datasets.OSCD``), so that those
classes and their datamodules construct with ``download=False`` (and
``checksum=False``) without attempting any download, and return samples with
the real shapes and dtypes.  Nothing here is real imagery: only the layout,
file names, band sizes and dtypes are real.

Usage::

    python configs/benchmarks/make_fake_data.py OUT_DIR [--datasets eurosat bigearthnet oscd]

writes ``OUT_DIR/eurosat``, ``OUT_DIR/bigearthnet`` and ``OUT_DIR/oscd`` (473
files, about 3.0 MB in all) and prints a summary.  From Python, ``make_eurosat(root)``,
``make_bigearthnet(root)`` and ``make_oscd(root)`` write into ``root`` itself
and return it; pass it as the dataset's / datamodule's ``root=``.

Pixel values
------------
Everything is generated from ``numpy.random.default_rng(0)`` (one generator per
dataset), so the output is byte-for-byte reproducible.  Sentinel-2 values are
uint16 reflectance x 10^4 inside 0-2700.  Each band has its own level
``S2_BAND_LEVEL[band]``, close to the band's typical mean over land (B10 ~ 30,
B09 ~ 730, visible bands ~ 950-1400, NIR ~ 2300-2600) but nudged so that any
two levels are at least 90 apart, and every pixel of a band lies within
``S2_MAX_DEVIATION`` (44) of its level.  So the channel order a reader
returns can be checked from the data alone: :func:`band_from_value` maps a
pixel value or a channel mean back to the band name.  Sentinel-1 values are
float32 backscatter in dB (VV ~ -11 dB, VH ~ -18 dB).

EuroSAT (``EuroSAT(root=make_eurosat(...))``)
---------------------------------------------
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

BigEarthNet v1 (``BigEarthNet(root=make_bigearthnet(...), bands=..., num_classes=...)``)
-----------------------------------------------------------------------------------------
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

OSCD (``OSCD(root=make_oscd(...), split='train'|'test')``)
----------------------------------------------------------
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

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

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

# --------------------------------------------------------------------------- #
# EuroSAT constants (TorchGeo 0.8.1 torchgeo/datasets/eurosat.py)
# --------------------------------------------------------------------------- #
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

# --------------------------------------------------------------------------- #
# BigEarthNet v1 constants (torchgeo/datasets/bigearthnet.py, class BigEarthNet)
# --------------------------------------------------------------------------- #
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

# --------------------------------------------------------------------------- #
# OSCD constants (torchgeo/datasets/oscd.py)
# --------------------------------------------------------------------------- #
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


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def band_from_value(value: float) -> str:
    """Return the Sentinel-2 band name whose fake level is closest to ``value``.

    Works on any pixel or channel mean of an S2 band written by this module.
    """
    return min(S2_BANDS, key=lambda b: abs(S2_BAND_LEVEL[b] - float(value)))


def _scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
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


def _s2_band(
    rng: np.random.Generator,
    band: str,
    scene: np.ndarray,
    offset: float = 0.0,
) -> np.ndarray:
    """One uint16 S2 band: band level + offset + band-specific share of ``scene``.

    ``scene`` comes from :func:`_scene` (possibly block-averaged, possibly
    plus an OSCD change signal); ``|offset| + max|scene|`` must stay within
    ``S2_MAX_DEVIATION``.  Dark bands (level < 1000) vary proportionally less.
    """
    level = S2_BAND_LEVEL[band]
    gain = rng.uniform(0.5, 1.0) * min(1.0, level / 1000.0)
    value = level + gain * (offset + scene)
    return np.clip(np.rint(value), 0, 10000).astype(np.uint16)


def _downsample(array: np.ndarray, factor: int) -> np.ndarray:
    """Block-average a 2-D array by an integer factor."""
    h, w = array.shape
    return array.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _north_up(x0: float, y0: float, xres: float, yres: float) -> rasterio.Affine:
    """Affine transform of a north-up grid with upper-left corner (x0, y0)."""
    return rasterio.Affine(xres, 0.0, x0, 0.0, -yres, y0)


def _write_geotiff(
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


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _dir_stats(root: Path) -> tuple[int, int]:
    """(number of files, total bytes) under ``root``."""
    n = size = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            n += 1
            size += os.path.getsize(os.path.join(dirpath, name))
    return n, size


# --------------------------------------------------------------------------- #
# EuroSAT
# --------------------------------------------------------------------------- #
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
                scene = _scene(rng, EUROSAT_SIZE, EUROSAT_SIZE)
                offset = float(rng.uniform(-8, 8))
                bands = np.stack([_s2_band(rng, b, scene, offset) for b in EUROSAT_FILE_BANDS])
                # Real EuroSAT tiles come from many UTM zones at ~10 m / pixel.
                epsg = 32629 + (ci % 7)
                x0 = 300000.0 + 640.0 * number + 10000.0 * ci
                y0 = 5000000.0 + 640.0 * number
                name = f"{cls}_{number}"
                _write_geotiff(
                    img_root / cls / f"{name}.tif",
                    bands,
                    f"EPSG:{epsg}",
                    _north_up(x0, y0, 10.0, 10.0),
                )
                split_lines[split].append(f"{name}.jpg")
                number += 1
    for split, fname in EUROSAT_SPLIT_FILES.items():
        _write_text(root / fname, "\n".join(split_lines[split]) + "\n")
    return root


# --------------------------------------------------------------------------- #
# BigEarthNet v1
# --------------------------------------------------------------------------- #
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
            scene = _scene(rng, size, size)
            offset = float(rng.uniform(-8, 8))
            s2_dir = root / BEN_S2_DIR / s2_name
            for band in BEN_S2_BANDS:
                gsd = S2_GSD[band]
                band_scene = _downsample(scene, gsd // 10)
                _write_geotiff(
                    s2_dir / f"{s2_name}_{band}.tif",
                    _s2_band(rng, band, band_scene, offset),
                    BEN_CRS,
                    _north_up(ulx, uly, float(gsd), float(gsd)),
                )
            _write_text(
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
                _write_geotiff(
                    s1_dir / f"{s1_name}_{pol}.tif",
                    db,
                    BEN_CRS,
                    _north_up(ulx, uly, 10.0, 10.0),
                )
            _write_text(
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
        _write_text(root / csv_name, "\n".join(lines) + "\n")
    return root


# --------------------------------------------------------------------------- #
# OSCD
# --------------------------------------------------------------------------- #
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
            transform = _north_up(400000.0, 6000000.0, 10.0, 10.0)
            change = _change_mask(rng, h, w)
            scene = _scene(rng, h, w)
            for date in (1, 2):
                offset = float(rng.uniform(-4, 4))
                # "New construction": the second date is brighter where changed.
                date_scene = scene + 8.0 * change if date == 2 else scene
                folder = images / region / f"imgs_{date}_rect"
                for band in S2_BANDS:
                    data = _s2_band(rng, band, date_scene, offset)
                    _write_geotiff(folder / f"{band}.tif", data, crs, transform)
            _write_text(
                images / region / "dates.txt",
                f"date_1: {date1}\ndate_2: {date2}\n",
            )
            cm_dir = root / OSCD_LABELS_DIR[split] / region / "cm"
            cm_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(change.astype(np.uint8) * 255).save(cm_dir / "cm.png")
            _write_geotiff(
                cm_dir / f"{region}-cm.tif",
                (change.astype(np.uint8) + 1),
                crs,
                transform,
            )
    train = list(OSCD_REGIONS["train"])
    test = list(OSCD_REGIONS["test"])
    _write_text(images / "train.txt", ",".join(train) + "\n")
    _write_text(images / "test.txt", ",".join(test) + "\n")
    _write_text(images / "all.txt", ",".join(train + test) + "\n")
    return root


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #
MAKERS = {
    "eurosat": make_eurosat,
    "bigearthnet": make_bigearthnet,
    "oscd": make_oscd,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        description="Write tiny fake EuroSAT / BigEarthNet v1 / OSCD copies in "
        "the on-disk layout read by TorchGeo 0.8.1's dataset classes.",
    )
    parser.add_argument("out_dir", type=Path, help="output folder")
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=list(MAKERS),
        default=list(MAKERS),
        help="datasets to write (default: all)",
    )
    args = parser.parse_args(argv)

    total_files = total_bytes = 0
    for name in args.datasets:
        root = MAKERS[name](args.out_dir / name)
        n, size = _dir_stats(root)
        total_files += n
        total_bytes += size
        print(f"{name:12s} {root}  ({n} files, {size / 1e6:.2f} MB)")
    print(f"{'total':12s} {args.out_dir}  ({total_files} files, {total_bytes} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

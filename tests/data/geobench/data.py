#!/usr/bin/env python3
"""Write a tiny fake GEO-Bench-2 (burn scars, BigEarthNet v2) as ``geobench_v2`` 0.9 reads it.

    python tests/data/geobench/data.py OUT_DIR      # or make_geobench(root) from a test

GEO-Bench-2 ships every dataset as one TACO "tortilla" file; ``geobench_v2``'s datasets
(``GeoBenchBurnScars``, ``GeoBenchBENV2``) and datamodules read them with ``tacoreader`` 0.5.6
and construct with ``download=False`` without touching the network. torchgeo-bench's GEO-Bench-2
wrappers read the same files under ``$GEOBENCH_V2_ROOT/<name>/``. Pixel values are described in
``tests/data/sentinel2.py`` (each band has its own level).

::

    root/
      burn_scars/geobench_burn_scars.tortilla
      benv2/geobench_benv2.tortilla

The tortilla layout, as tacoreader 0.5.6 reads (and its ``compile`` writes) it:

* a 200-byte header: ``b"#y"``, the footer's offset and length (little-endian uint64), the
  number of data partitions (uint64, 1), zeros;
* the data: one nested tortilla per sample, each with the same header, its files (GeoTIFF
  bytes) and its own footer, offsets counted from the start of the sample;
* the footer: a Parquet table, one row per sample (``tortilla:id``, ``tortilla:file_format``
  = ``"TORTILLA"``, ``tortilla:offset``, ``tortilla:length``, ``tortilla:data_split`` in
  ``train / validation / test``, ``stac:centroid`` as WKT ``POINT (lon lat)``, plus the
  dataset's columns). A sample's footer has one row per file (``tortilla:file_format`` =
  ``"GTiff"``) and repeats the sample's metadata columns (the datasets read ``labels`` and
  ``stac:centroid`` from the first file's row).

Datasets (4 train, 2 validation, 2 test samples each):

* **burn_scars** (``GeoBenchBurnScars``): files ``image`` (6-band float32 HLS reflectance in
  0-1, bands ``B02 B03 B04 B8A B11 B12``) and ``mask`` (int16: 0 not burned, 1 burn scar, -1
  nodata, which the dataset turns into 2), 64x64 pixels (the real chips are 512x512).
* **benv2** (``GeoBenchBENV2``): files ``s1`` (float32 ``VV VH`` in dB) and ``s2`` (uint16,
  the 12 L2A bands ``B01 … B12`` without B10, in wavelength order), 120x120 as the real ones;
  column ``labels``: a list of names from the 19-class nomenclature, plus ``lon`` / ``lat``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import rasterio
from rasterio.io import MemoryFile

if __package__ in (None, ""):  # run as a script: make tests/ importable (and shadow this file's own name)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from data.sentinel2 import S2_BAND_LEVEL, SEED, north_up, s2_band, script, texture  # noqa: E402

HEADER_BYTES = 200
SPLITS = {"train": 4, "validation": 2, "test": 2}

BURN_SCARS_FILE = "geobench_burn_scars.tortilla"
BURN_SCARS_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B8A", "B11", "B12")
BURN_SCARS_SIZE = 64

BENV2_FILE = "geobench_benv2.tortilla"
BENV2_S2_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
BENV2_S1_BANDS: tuple[str, ...] = ("VV", "VH")
BENV2_SIZE = 120
#: geobench_v2 0.9's GeoBenchBENV2.label_names (the 19-class CORINE nomenclature)
BENV2_LABELS: tuple[str, ...] = (
    "Urban fabric", "Industrial or commercial units", "Arable land", "Permanent crops", "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas", "Broad-leaved forest", "Coniferous forest", "Mixed forest",
    "Natural grassland and sparsely vegetated areas", "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub", "Beaches, dunes, sands", "Inland wetlands", "Coastal wetlands",
    "Inland waters", "Marine waters",
)  # fmt: skip


def geotiff_bytes(data: np.ndarray, crs: str, transform: rasterio.Affine) -> bytes:
    """A (C, H, W) array as the bytes of a deflate-compressed GeoTIFF."""
    with MemoryFile() as memory:
        with memory.open(
            driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype,
            crs=crs, transform=transform, compress="deflate",
        ) as dst:
            dst.write(data)
        return bytes(memory.read())


def parquet_bytes(rows: list[dict]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue().to_pybytes()


def tortilla(files: list[tuple[str, str, bytes]], metadata: list[dict]) -> bytes:
    """One tortilla: ``files`` as ``(id, file_format, payload)``, ``metadata`` one dict of extra
    footer columns per file; offsets in the footer count from the tortilla's first byte."""
    rows, offset = [], HEADER_BYTES
    for (name, file_format, payload), extra in zip(files, metadata, strict=True):
        rows.append({"tortilla:id": name, "tortilla:file_format": file_format, "tortilla:offset": offset,
                     "tortilla:length": len(payload), **extra})
        offset += len(payload)
    footer = parquet_bytes(rows)
    header = b"#y" + offset.to_bytes(8, "little") + len(footer).to_bytes(8, "little") + (1).to_bytes(8, "little")
    return header.ljust(HEADER_BYTES, b"\0") + b"".join(payload for _, _, payload in files) + footer


def write_tortilla(path: Path, samples: list[tuple[str, list[tuple[str, str, bytes]], dict]]) -> Path:
    """A dataset file: ``samples`` as ``(id, files, metadata)``; each sample is a nested tortilla
    whose files' rows repeat the sample's ``metadata``."""
    nested = [(sid, "TORTILLA", tortilla(files, [meta] * len(files))) for sid, files, meta in samples]
    data = tortilla(nested, [meta for _, _, meta in samples])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _split_of(index: int) -> str:
    bounds, start = {}, 0
    for split, n in SPLITS.items():
        bounds.update({i: split for i in range(start, start + n)})
        start += n
    return bounds[index]


def _place(rng: np.random.Generator, i: int) -> tuple[float, float, str, rasterio.Affine]:
    """A location (lon, lat), its UTM zone and a 10 m north-up transform there."""
    lon, lat = float(rng.uniform(-120, 30)), float(rng.uniform(30, 60))
    zone = int((lon + 180) // 6) + 1
    return lon, lat, f"EPSG:{32600 + zone}", north_up(400000.0 + 1000.0 * i, 5000000.0, 10.0, 10.0)


def make_burn_scars(root: Path) -> Path:
    rng = np.random.default_rng(SEED)
    samples = []
    for i in range(sum(SPLITS.values())):
        lon, lat, crs, transform = _place(rng, i)
        scene = texture(rng, BURN_SCARS_SIZE, BURN_SCARS_SIZE)
        image = np.stack([s2_band(rng, b, scene) for b in BURN_SCARS_BANDS]).astype(np.float32) / 10000.0
        mask = (scene > 5).astype(np.int16)  # burn scars where the texture is high
        mask[:4, :4] = -1  # a nodata corner
        meta = {"tortilla:data_split": _split_of(i), "stac:centroid": f"POINT ({lon} {lat})"}
        files = [("image", "GTiff", geotiff_bytes(image, crs, transform)),
                 ("mask", "GTiff", geotiff_bytes(mask[None], crs, transform))]
        samples.append((f"burn_scars_{i:03d}", files, meta))
    return write_tortilla(Path(root) / "burn_scars" / BURN_SCARS_FILE, samples)


def make_benv2(root: Path) -> Path:
    rng = np.random.default_rng(SEED + 1)
    samples = []
    for i in range(sum(SPLITS.values())):
        lon, lat, crs, transform = _place(rng, i)
        scene = texture(rng, BENV2_SIZE, BENV2_SIZE)
        s2 = np.stack([s2_band(rng, b, scene) for b in BENV2_S2_BANDS])
        s1 = np.stack([np.float32(-11.0) + 0.05 * scene, np.float32(-18.0) + 0.05 * scene]).astype(np.float32)
        labels = sorted({BENV2_LABELS[i % len(BENV2_LABELS)], BENV2_LABELS[int(rng.integers(len(BENV2_LABELS)))]})
        meta = {"tortilla:data_split": _split_of(i), "stac:centroid": f"POINT ({lon} {lat})",
                "labels": labels, "lon": lon, "lat": lat}
        files = [("s1", "GTiff", geotiff_bytes(s1, crs, transform)), ("s2", "GTiff", geotiff_bytes(s2, crs, transform))]
        samples.append((f"benv2_{i:03d}", files, meta))
    return write_tortilla(Path(root) / "benv2" / BENV2_FILE, samples)


def make_geobench(root: Path) -> Path:
    """Write both fake GEO-Bench-2 datasets under ``root`` (``root/<name>/<file>.tortilla``); returns ``root``."""
    make_burn_scars(root)
    make_benv2(root)
    return Path(root)


#: burn scars' reflectance level of each band (what a channel mean is close to)
BURN_SCARS_LEVEL = {b: S2_BAND_LEVEL[b] / 10000.0 for b in BURN_SCARS_BANDS}

if __name__ == "__main__":
    sys.exit(script(make_geobench, "Write a tiny fake GEO-Bench-2 (burn scars, BigEarthNet v2) as geobench_v2 reads it."))

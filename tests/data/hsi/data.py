#!/usr/bin/env python3
"""Write tiny fake HSI + SAR/LiDAR benchmarks in the on-disk layouts their users download.

    python tests/data/hsi/data.py OUT_DIR      # or the make_* functions from a test

Every file has the real name, MATLAB variable name, dtype and orientation (rows × columns ×
bands), and the real number of bands and classes; only the scene is small (its aspect follows
the real one) and its content is the package's synthetic scene (``make_scene``), so it is
learnable. What each layout is, and where it comes from (docs/hsi_datasets.md):

* **SS-MAE / OUC** (``make_ouc``; SS-MAE's ``data/dataset.py``, the zips SS-MAE's README links)::

      Berlin/berlin_hsi.mat (berlin_hsi: H×W×244 float64)  berlin_sar.mat (berlin_sar: H×W×4 float64)
      Augsburg/augsburg_hsi.mat (H×W×180 uint16)           augsburg_sar.mat (H×W×4 float64)
      Houston2018/houston_hsi.mat (H×W×50 uint16)          houston_lidar.mat (houston_lidar: H×W float32)
      <dir>/<p>_gt.mat (<p>_gt: H×W uint8, 0 unlabelled, 1…K)
      <dir>/<p>_index.mat (<p>_train, <p>_test, <p>_all: N×2 0-based (row, column))

* **Hong et al. 2021** (``make_hong``; the S2FL benchmark)::

      HS-SAR Berlin/data_HS_LR.mat  data_SAR_HR.mat  TrainImage.mat  TestImage.mat
      HS-SAR-DSM Augsburg/data_HS_LR.mat  data_SAR_HR.mat  data_DSM.mat  TrainImage.mat  TestImage.mat

* **Houston 2013** as ``HSI.mat``/``LiDAR.mat``/``gt.mat``/``TRLabel.mat``/``TSLabel.mat``
  (``make_houston2013``; the Multimodal-Remote-Sensing-Toolkit layout), optionally as MATLAB
  v7.3 (HDF5, column-major, as MATLAB writes it).
* **ENVI** (``make_envi``): a band-sequential uint16 raw file with its ``.hdr`` (wavelengths in
  micrometres, as many sensors' headers give them) and a GeoTIFF label raster.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from terratorch_specmae.datamodules.synthetic_hsi import make_scene

#: name → (folder, file prefix, HSI bands, HSI dtype, second source, its bands (0: 2-D), classes, rows, columns)
OUC = {
    "berlin": ("Berlin", "berlin", 244, np.float64, "sar", 4, 8, 56, 16),
    "augsburg": ("Augsburg", "augsburg", 180, np.uint16, "sar", 4, 7, 22, 32),
    "houston2018": ("Houston2018", "houston", 50, np.uint16, "lidar", 0, 20, 16, 64),
}


def write_mat(path: Path, arrays: dict[str, np.ndarray], v73: bool = False) -> Path:
    """A MATLAB file: v5 through scipy, or v7.3 (HDF5) laid out as MATLAB writes it (column-major)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not v73:
        from scipy.io import savemat

        savemat(path, arrays, do_compression=True)
        return path
    import h5py

    classes = {np.dtype(np.float64): "double", np.dtype(np.float32): "single", np.dtype(np.uint8): "uint8",
               np.dtype(np.uint16): "uint16", np.dtype(np.int32): "int32"}  # fmt: skip
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, array in arrays.items():
            data = f.create_dataset(key, data=np.asarray(array).T, chunks=True, compression="gzip")
            data.attrs["MATLAB_class"] = np.bytes_(classes[np.asarray(array).dtype])
    with open(path, "r+b") as f:  # MATLAB's 128-byte text header in the user block
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .".ljust(116))
    return path


def _scene(rows: int, cols: int, bands: int, classes: int, seed: int):
    """The synthetic scene cropped to ``rows × cols`` with labels in 1…``classes`` (the 6 synthetic
    classes spread over the dataset's ids by column block)."""
    scene = make_scene(size=max(rows, cols, 16), num_bands=bands, seed=seed, labelled_fraction=0.3)
    hsi, dsm = scene.hsi[:, :rows, :cols], scene.dsm[:rows, :cols]
    labels, split = scene.labels[:rows, :cols].astype(np.int64), scene.split[:rows, :cols]
    blocks = -(-classes // 6)
    block = (np.arange(cols)[None, :] * blocks // cols).repeat(rows, axis=0)
    ids = np.where(labels > 0, 1 + ((labels - 1) + 6 * block) % classes, 0)
    return hsi, dsm, ids.astype(np.uint8), split, scene.wavelengths


def _sar(dsm: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Four SAR-like channels H×W×4 (VV, VH intensities; real, imaginary covariance parts)."""
    base = 0.05 + 0.02 * (dsm - dsm.min()) + 0.01 * labels
    speckle = rng.gamma(4.0, 0.25, size=(*dsm.shape, 4))
    return (base[..., None] * speckle * np.array([1.0, 0.3, 0.1, 0.05])).astype(np.float64)


def make_ouc(root: str | Path, name: str, seed: int = 0) -> dict[str, Path]:
    """SS-MAE's files of ``name`` (berlin, augsburg, houston2018) under ``root``; returns their paths."""
    folder, p, bands, dtype, second, _, classes, rows, cols = OUC[name]
    rng = np.random.default_rng(seed)
    hsi, dsm, labels, split, _ = _scene(rows, cols, bands, classes, seed)
    cube = hsi.transpose(1, 2, 0)  # H × W × C
    cube = (cube * 10000).round().astype(dtype) if dtype == np.uint16 else cube.astype(dtype)
    out = Path(root) / folder
    paths = {"hsi": write_mat(out / f"{p}_hsi.mat", {f"{p}_hsi": cube})}
    aux = _sar(dsm, labels, rng) if second == "sar" else dsm.astype(np.float32)
    paths["aux"] = write_mat(out / f"{p}_{second}.mat", {f"{p}_{second}": aux})
    paths["gt"] = write_mat(out / f"{p}_gt.mat", {f"{p}_gt": labels})
    train = np.argwhere((labels > 0) & (split == 1)).astype(np.float64)  # MATLAB's default class: double
    test = np.argwhere((labels > 0) & (split == 2)).astype(np.float64)
    every = np.argwhere(np.ones_like(labels, bool)).astype(np.float64)
    paths["index"] = write_mat(out / f"{p}_index.mat", {f"{p}_train": train, f"{p}_test": test, f"{p}_all": every})
    return paths


def make_hong(root: str | Path, name: str, seed: int = 0) -> dict[str, Path]:
    """Hong et al.'s ``HS-SAR Berlin`` or ``HS-SAR-DSM Augsburg`` folder (``name``: berlin, augsburg)."""
    _, _, bands, _, _, _, classes, rows, cols = OUC[name]
    rng = np.random.default_rng(seed)
    hsi, dsm, labels, split, _ = _scene(rows, cols, bands, classes, seed)
    out = Path(root) / ("HS-SAR Berlin" if name == "berlin" else "HS-SAR-DSM Augsburg")
    paths = {
        "hsi": write_mat(out / "data_HS_LR.mat", {"data_HS_LR": hsi.transpose(1, 2, 0).astype(np.float64)}),
        "sar": write_mat(out / "data_SAR_HR.mat", {"data_SAR_HR": _sar(dsm, labels, rng)}),
        "train": write_mat(out / "TrainImage.mat", {"TrainImage": np.where(split == 1, labels, 0).astype(np.uint8)}),
        "test": write_mat(out / "TestImage.mat", {"TestImage": np.where(split == 2, labels, 0).astype(np.uint8)}),
    }
    if name == "augsburg":
        paths["dsm"] = write_mat(out / "data_DSM.mat", {"data_DSM": dsm.astype(np.float64)})
    return paths


def make_houston2013(root: str | Path, v73: bool = False, seed: int = 0) -> dict[str, Path]:
    """Houston 2013 (144 bands 364–1046 nm, LiDAR DSM, 15 classes) as HSI.mat … TSLabel.mat."""
    rows, cols = 16, 84  # 349 × 1905
    hsi, dsm, labels, split, _ = _scene(rows, cols, 144, 15, seed)
    out = Path(root) / "Houston2013"
    return {
        "hsi": write_mat(out / "HSI.mat", {"HSI": hsi.transpose(1, 2, 0).astype(np.float64)}, v73),
        "lidar": write_mat(out / "LiDAR.mat", {"LiDAR": dsm.astype(np.float64)}, v73),
        "gt": write_mat(out / "gt.mat", {"gt": labels}, v73),
        "train": write_mat(out / "TRLabel.mat", {"TRLabel": np.where(split == 1, labels, 0).astype(np.uint8)}, v73),
        "test": write_mat(out / "TSLabel.mat", {"TSLabel": np.where(split == 2, labels, 0).astype(np.uint8)}, v73),
    }


def make_envi(root: str | Path, rows: int = 24, cols: int = 40, bands: int = 48, seed: int = 0) -> dict[str, Path]:
    """``scene.hdr`` + ``scene.img`` (BSQ uint16 reflectance × 10000, wavelengths in µm) and ``labels.tif``."""
    import rasterio
    from rasterio.transform import from_origin

    hsi, _, labels, _, wl = _scene(rows, cols, bands, 6, seed)
    out = Path(root) / "envi"
    out.mkdir(parents=True, exist_ok=True)
    (hsi * 10000).round().astype("<u2").tofile(out / "scene.img")  # band-sequential, little-endian
    header = [
        "ENVI",
        "description = {fake scene in an ENVI file}",
        f"samples = {cols}",
        f"lines = {rows}",
        f"bands = {bands}",
        "header offset = 0",
        "file type = ENVI Standard",
        "data type = 12",
        "interleave = bsq",
        "byte order = 0",
        "map info = {UTM, 1.000, 1.000, 271460.000, 3290891.000, 1.0000000000e+00, 1.0000000000e+00, 15, North, WGS-84, units=Meters}",
        "wavelength units = Micrometers",
        "wavelength = {" + ", ".join(f"{w / 1000:.6f}" for w in wl) + "}",
    ]
    (out / "scene.hdr").write_text("\n".join(header) + "\n")
    with rasterio.open(
        out / "labels.tif", "w", driver="GTiff", height=rows, width=cols, count=1, dtype="uint8",
        crs="EPSG:32615", transform=from_origin(271460.0, 3290891.0, 1.0, 1.0),
    ) as dst:  # fmt: skip
        dst.write(labels, 1)
    return {"hsi": out / "scene.img", "header": out / "scene.hdr", "labels": out / "labels.tif", "wavelengths": wl}


def main(out: str) -> None:
    for name in OUC:
        make_ouc(Path(out) / "ouc", name)
    for name in ("berlin", "augsburg"):
        make_hong(Path(out) / "hong", name)
    make_houston2013(Path(out) / "mmr")
    make_envi(Path(out))
    print(f"wrote fake HSI benchmarks under {out}")


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Peak memory of HSIPixelDataModule on a Houston-2018-sized scene: in memory vs ``lazy=True``.

The scene is Houston 2018's full-resolution HSI size, 1202 rows × 4172 columns × 48 bands
(uint16, 481 MB on disk), written once as ENVI (band-sequential raw + ``.hdr``) and as MATLAB
v7.3 (HDF5, chunked, gzip), with a 1-band DSM and a label raster. For each format and mode, a
fresh process builds the datamodule, runs ``setup("fit")`` and draws ``--samples`` training
patches through a DataLoader (batch 64); it reports its peak resident memory (``ru_maxrss``)
minus the memory of the same process before the datamodule was built (imports), the seconds
``setup`` took and the milliseconds per drawn patch.

    python benchmarks/hsi_lazy_memory.py [--dir DIR] [--samples 2048] [--rows 1202 --cols 4172]

Files go to ``--dir`` (default: a temporary folder, removed afterwards).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
import numpy as np
import torch
from terratorch_specmae.datamodules.hsi_pixels import HSIPixelDataModule
hsi, aux, labels, lazy, samples = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5])
torch.set_num_threads(1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
dm = HSIPixelDataModule(hsi, [aux], labels_path=labels, patch_size=7, batch_size=64, lazy=lazy)
dm.setup("fit")
setup_s = time.perf_counter() - start
start, drawn = time.perf_counter(), 0
for batch in dm.train_dataloader():
    drawn += len(batch["label"])
    if drawn >= samples:
        break
per_patch_ms = 1000 * (time.perf_counter() - start) / drawn
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mb": (peak - base) / 1024, "setup_s": setup_s, "per_patch_ms": per_patch_ms}))
"""


def write_scene(out: Path, rows: int, cols: int, bands: int = 48) -> dict[str, Path]:
    import h5py
    import rasterio

    rng = np.random.default_rng(0)
    out.mkdir(parents=True, exist_ok=True)
    wavelengths = np.linspace(380.0, 1050.0, bands)
    raw = out / "houston_hsi.img"
    with open(raw, "wb") as f:  # band-sequential, one band at a time (the writer's memory stays small)
        for b in range(bands):
            level = 800 + 60 * b
            f.write((level + rng.integers(0, 400, (rows, cols))).astype("<u2").tobytes())
    (out / "houston_hsi.hdr").write_text(
        "ENVI\n"
        f"samples = {cols}\nlines = {rows}\nbands = {bands}\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 12\ninterleave = bsq\nbyte order = 0\nwavelength units = Nanometers\n"
        "wavelength = {" + ", ".join(f"{w:.2f}" for w in wavelengths) + "}\n"
    )
    mat = out / "houston_hsi_v73.mat"
    memmap = np.memmap(raw, "<u2", "r", shape=(bands, rows, cols))
    with h5py.File(mat, "w", userblock_size=512) as f:  # MATLAB's layout: H × W × C stored column-major
        data = f.create_dataset("houston_hsi", shape=(bands, cols, rows), dtype="u2", chunks=(bands, 32, 32),
                                compression="gzip", compression_opts=1)  # fmt: skip
        for c0 in range(0, cols, 32):  # whole chunks at a time: 32 columns, every band and row
            data[:, c0 : c0 + 32, :] = np.asarray(memmap[:, :, c0 : c0 + 32]).transpose(0, 2, 1)
    profile = {"driver": "GTiff", "height": rows, "width": cols, "count": 1, "tiled": True, "compress": "deflate"}
    dsm = out / "dsm.tif"
    with rasterio.open(dsm, "w", dtype="float32", **profile) as dst:
        dst.write(rng.normal(20.0, 5.0, (rows, cols)).astype(np.float32), 1)
    labels = out / "labels.tif"
    with rasterio.open(labels, "w", dtype="uint8", **profile) as dst:
        dst.write(np.where(rng.random((rows, cols)) < 0.02, rng.integers(1, 21, (rows, cols)), 0).astype(np.uint8), 1)
    return {"envi": out / "houston_hsi.hdr", "mat_v73": mat, "dsm": dsm, "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--rows", type=int, default=1202)
    parser.add_argument("--cols", type=int, default=4172)
    parser.add_argument("--samples", type=int, default=2048)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="hsi_lazy_"))
    try:
        start = time.perf_counter()
        files = write_scene(work, args.rows, args.cols)
        scene_mb = args.rows * args.cols * 49 * 4 / 2**20
        print(f"scene {args.rows} × {args.cols} × 48 (+1 DSM band) written in {time.perf_counter() - start:.0f} s; "
              f"as float32 it is {scene_mb:.0f} MB")  # fmt: skip
        print(f"{'format':<8} {'mode':<10} {'peak MB above imports':>22} {'setup s':>8} {'ms/patch':>9}")
        results = {}
        for fmt in ("envi", "mat_v73"):
            for lazy in (False, True):
                cmd = [sys.executable, "-c", CHILD, str(files[fmt]), str(files["dsm"]), str(files["labels"]),
                       "1" if lazy else "0", str(args.samples)]  # fmt: skip
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                r = results[(fmt, lazy)] = json.loads(out)
                mode = "lazy" if lazy else "in memory"
                print(f"{fmt:<8} {mode:<10} {r['peak_mb']:>22.0f} {r['setup_s']:>8.1f} {r['per_patch_ms']:>9.3f}")
        for fmt in ("envi", "mat_v73"):
            eager, lazy = results[(fmt, False)], results[(fmt, True)]
            print(f"{fmt}: lazy peak / in-memory peak = {lazy['peak_mb'] / eager['peak_mb']:.3f}; "
                  f"lazy peak / scene as float32 = {lazy['peak_mb'] / scene_mb:.3f}")  # fmt: skip
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Peak memory of whole-scene prediction as the scene grows: TerraTorch's tiled_inference vs ours.

What is measured, in one run:

* A segmentation model is fine-tuned for a few steps with ``configs/specmae_seg.yaml``
  (ViT-tiny S2MAE, 64 px chips; the weights do not matter for memory).
* Scenes: the Olinda Landsat 7 chips (train + val) mosaicked into the 352 × 349 px scene, then
  repeated ``k × k`` times (``--repeats``, default 1 2 4 8) into scenes of k² times the area,
  written as GeoTIFFs with the scene's georeference.
* For each scene, two ``terratorch predict`` runs, each in its own process:
  *terratorch*: ``GenericNonGeoSegmentationDataModule`` + the task's
  ``tiled_inference_parameters`` (64 px crops, stride 48, averaged overlaps);
  *ours*: ``-c configs/predict_scene.yaml`` (``SceneTilesDataModule`` + ``SceneWriter``, the same
  crops and stride) with ``--return_predictions=false``.
* Peak resident memory (``ru_maxrss`` of that process, from ``os.wait4``), wall time, and the
  ratio of the peaks of the largest and the smallest scene for each route. TerraTorch's route
  runs only up to ``--terratorch-max-repeat`` (default 4: at 8 × 8 it needs ~4× the memory and
  time of 4 × 4, which a small machine cannot spare); ours runs at every size.

Run from the repository root::

    python benchmarks/tiled_predict_memory.py              # ~8 min on 2 CPU cores
    python benchmarks/tiled_predict_memory.py --repeats 1 2  # quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import rasterio.merge
from rasterio.transform import Affine

ROOT = Path(__file__).resolve().parents[1]
TERRATORCH = shutil.which("terratorch", path=str(Path(sys.executable).parent)) or "terratorch"


def run(args: list[str]) -> tuple[float, float]:
    """Run ``terratorch *args`` in a child process; return (peak RSS in GB, seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen([TERRATORCH, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"terratorch {' '.join(args)} failed:\n{proc.stderr.read()[-4000:]}")
    return usage.ru_maxrss / 1e6, seconds  # ru_maxrss is in kB on Linux


def scene_mosaic() -> tuple[np.ndarray, dict]:
    chips = sorted((ROOT / "examples/data/olinda_l7").glob("*/images/*.tif"))
    sources = [rasterio.open(c) for c in chips]
    mosaic, transform = rasterio.merge.merge(sources)
    profile = {**sources[0].profile, "height": mosaic.shape[1], "width": mosaic.shape[2], "transform": transform}
    for src in sources:
        src.close()
    return mosaic, profile


def write_repeated(mosaic: np.ndarray, profile: dict, k: int, path: Path) -> tuple[int, int]:
    data = np.tile(mosaic, (1, k, k))
    t: Affine = profile["transform"]
    prof = {**profile, "height": data.shape[1], "width": data.shape[2], "compress": "deflate", "tiled": True,
            "blockxsize": 256, "blockysize": 256}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data)
    assert prof["transform"] == t
    return data.shape[1], data.shape[2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--terratorch-max-repeat", type=int, default=4)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fit = ["fit", "-c", "configs/specmae_seg.yaml", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
               "--trainer.limit_val_batches=1", f"--trainer.default_root_dir={tmp / 'fit'}"]  # fmt: skip
        run(fit)
        ckpt = next((tmp / "fit").rglob("last.ckpt"))
        mosaic, profile = scene_mosaic()
        rows = []
        for k in args.repeats:
            scene = tmp / f"scene_x{k}" / f"olinda_x{k}.tif"
            height, width = write_repeated(mosaic, profile, k, scene)
            common = ["predict", "-c", "configs/specmae_seg.yaml", f"--ckpt_path={ckpt}"]
            theirs = None if k > args.terratorch_max_repeat else run([
                *common, f"--data.init_args.predict_data_root={scene.parent}", f"--predict_output_dir={tmp / 'tt'}",
                "--model.init_args.tiled_inference_parameters={h_crop: 64, w_crop: 64, h_stride: 48, w_stride: 48}",
                f"--trainer.default_root_dir={tmp / 'p1'}",
            ])  # fmt: skip
            ours = run([
                *common, "-c", "configs/predict_scene.yaml", f"--data.init_args.scene={scene}",
                f"--predict_output_dir={tmp / 'ours'}", "--return_predictions=false",
                f"--trainer.default_root_dir={tmp / 'p2'}",
            ])  # fmt: skip
            with rasterio.open(tmp / "ours" / f"olinda_x{k}_pred.tif") as pred:
                assert pred.shape == (height, width) and pred.transform == profile["transform"]
            rows.append((k, height, width, theirs, ours))
            tt = f"{theirs[0]:.2f} GB in {theirs[1]:.0f} s" if theirs else "(skipped)"
            print(f"{height:5d} × {width:5d} px ({height * width / 1e6:5.2f} Mpx): terratorch tiled_inference {tt} | "
                  f"SceneTilesDataModule {ours[0]:.2f} GB in {ours[1]:.0f} s", flush=True)  # fmt: skip
        small = rows[0]
        for name, col in (("terratorch tiled_inference", 3), ("SceneTilesDataModule + SceneWriter", 4)):
            large = [r for r in rows if r[col] is not None][-1]
            area = large[1] * large[2] / (small[1] * small[2])
            print(f"{name}: scene area × {area:.0f} → peak memory × {large[col][0] / small[col][0]:.2f}")


if __name__ == "__main__":
    main()

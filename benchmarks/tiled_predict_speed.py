"""Whole-scene prediction throughput in km² per second: tiled segmentation of a large synthetic scene.

* The model is ``configs/specmae_seg.yaml``'s (S2MAE ViT-tiny + UPerNet on 6 Landsat bands, 64 px
  chips; random weights — speed does not depend on them), built by TerraTorch's
  ``SemanticSegmentationTask`` from that config's ``model_args``; ``--backbone`` swaps it.
* The scene: a ``--size`` × ``--size`` px GeoTIFF of 6 bands at 30 m (Landsat), uint8 values drawn
  around the example data's means, written with a UTM georeference.
* Prediction: ``configs/predict_scene.yaml``'s route — ``SceneTilesDataModule`` (64 px tiles,
  stride 48) and ``SceneWriter`` writing the class map GeoTIFF — through Lightning's
  ``trainer.predict``, in bf16 (``precision="bf16-mixed"``) and fp32, after a warm-up on a small
  scene. km²/s = scene area / wall time of ``trainer.predict`` (reading, model, writing).
* ``--cpu-attention-kernel`` adds a bf16 run of the same model (same weights) with our bf16 CPU
  attention kernel (``backbone_cpu_attention_kernel: true``; CPUs with AVX512-BF16).

    python benchmarks/tiled_predict_speed.py                  # 2048² px (3775 km²), bf16 + fp32 (~6 min on 2 CPU cores)
    python benchmarks/tiled_predict_speed.py --size 1024 --precisions bf16-mixed
    python benchmarks/tiled_predict_speed.py --cpu-attention-kernel
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import rasterio
import yaml
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parents[1]
PIXEL_M = 30.0


def write_scene(path: Path, size: int, means, stds, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    data = np.stack([rng.normal(m, s, size=(size, size)) for m, s in zip(means, stds)]).clip(0, 255).astype("uint8")
    profile = {"driver": "GTiff", "height": size, "width": size, "count": len(means), "dtype": "uint8",
               "crs": "EPSG:31985", "transform": from_origin(290_000, 9_120_000, PIXEL_M, PIXEL_M),
               "compress": "deflate", "tiled": True}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="scene side in pixels (default: 2048)")
    parser.add_argument("--precisions", nargs="+", default=["bf16-mixed", "32"])
    parser.add_argument("--backbone", default=None, help="another backbone name (default: the config's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cpu-attention-kernel", action="store_true",
                        help="add a bf16 run with our CPU attention kernel (label bf16-mixed+kernel)")
    parser.add_argument("--json")
    args = parser.parse_args()

    import terratorch_specmae  # noqa: F401  (registers the backbones)
    from terratorch.tasks import SemanticSegmentationTask

    from terratorch_specmae.callbacks import SceneWriter
    from terratorch_specmae.datamodules import SceneTilesDataModule

    seg = yaml.safe_load((ROOT / "configs/specmae_seg.yaml").read_text())
    scene_cfg = yaml.safe_load((ROOT / "configs/predict_scene.yaml").read_text())["data"]["init_args"]
    task_args = dict(seg["model"]["init_args"])
    if args.backbone:
        task_args["model_args"] = {**task_args["model_args"], "backbone": args.backbone}
    task = SemanticSegmentationTask(**task_args)
    runs = [(precision, precision, task) for precision in args.precisions]
    if args.cpu_attention_kernel:
        fast = SemanticSegmentationTask(
            **{**task_args, "model_args": {**task_args["model_args"], "backbone_cpu_attention_kernel": True}}
        )
        fast.load_state_dict(task.state_dict())
        runs.append(("bf16-mixed+kernel", "bf16-mixed", fast))
    area_km2 = (args.size * PIXEL_M / 1000) ** 2
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_scene(tmp / "warmup.tif", 256, scene_cfg["means"], scene_cfg["stds"])
        write_scene(tmp / "scene.tif", args.size, scene_cfg["means"], scene_cfg["stds"])
        print(f"scene {args.size}² px at {PIXEL_M:.0f} m = {area_km2:.0f} km², {task_args['model_args']['backbone']}, "
              f"tiles {scene_cfg['crop']} px stride {scene_cfg['stride']}, batch {args.batch_size}", flush=True)
        for label, precision, model in runs:
            for name in ("warmup", "scene"):
                dm = SceneTilesDataModule(
                    scene=str(tmp / f"{name}.tif"), crop=scene_cfg["crop"], stride=scene_cfg["stride"],
                    means=scene_cfg["means"], stds=scene_cfg["stds"], batch_size=args.batch_size,
                )  # fmt: skip
                writer = SceneWriter(out_dir=str(tmp / f"out_{label}"))
                trainer = pl.Trainer(accelerator="cpu", devices=1, precision=precision, logger=False,
                                     callbacks=[writer], enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
                t0 = time.perf_counter()
                trainer.predict(model, datamodule=dm, return_predictions=False)
                seconds = time.perf_counter() - t0
            tiles = len(dm.predict_dataloader().dataset)
            with rasterio.open(tmp / f"out_{label}" / "scene_pred.tif") as out:
                assert out.crs is not None and out.width == args.size, "the class map keeps the scene's grid"
                classes = out.read(1)
            results[label] = {"seconds": seconds, "km2_per_s": area_km2 / seconds, "tiles": tiles}
            if label.endswith("+kernel"):  # the same weights: the same class map, up to bf16 rounding
                with rasterio.open(tmp / "out_bf16-mixed" / "scene_pred.tif") as out:
                    results[label]["same_class_as_bf16"] = float((out.read(1) == classes).mean())
            print(f"{label:>17}: {seconds:7.1f} s for {tiles} tiles → {area_km2 / seconds:7.1f} km²/s "
                  f"({tiles / seconds:.1f} tiles/s)", flush=True)
    if len(results) > 1 and "bf16-mixed" in results and "32" in results:
        print(f"bf16 / fp32: {results['bf16-mixed']['km2_per_s'] / results['32']['km2_per_s']:.2f}x")
    if "bf16-mixed+kernel" in results and "bf16-mixed" in results:
        fast = results["bf16-mixed+kernel"]
        print(f"bf16 with the kernel / bf16: {fast['km2_per_s'] / results['bf16-mixed']['km2_per_s']:.2f}x "
              f"(same class for {fast['same_class_as_bf16']:.2%} of the pixels)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "area_km2": area_km2, "results": results}, indent=2))


if __name__ == "__main__":
    main()

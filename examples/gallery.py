"""Train every example task from its config and collect one PNG of its predictions per task.

    python examples/gallery.py                        # every task, the configs' own epochs (~25 min, 2 CPU cores)
    python examples/gallery.py --only seg det         # some tasks
    python examples/gallery.py --quick --out /tmp/g   # one short epoch each: pictures of barely trained models

Each task runs the stock ``terratorch`` command on its config (``fit``, and ``predict`` where the
picture is a scene map); the pictures are the ones the configs' callbacks draw during training
(``PredictionPNGs``, ``ReconstructionPNGs``, ``SaliencyMaskPNGs``) or at prediction
(``ClassMapWriter``, ``SceneWriter``). The last one of each task is copied to
``<out>/<task>.png`` (default ``docs/gallery/``, which the README's task table shows).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TERRATORCH = shutil.which("terratorch", path=str(Path(sys.executable).parent)) or "terratorch"
QUICK = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]

# task → (config, the picture's file pattern under the run directory)
FIT_TASKS = {
    "pretrain_s2mae": ("configs/specmae_pretrain_s2mae.yaml", "reconstructions/reconstruction_epoch*.png"),
    "pretrain_sigmae": ("configs/specmae_pretrain_sigmae.yaml", "saliency/*.png"),
    "seg": ("configs/specmae_seg.yaml", "predictions/segmentation_epoch*.png"),
    "cls": ("configs/specmae_cls.yaml", "predictions/classification_epoch*.png"),
    "multilabel": ("configs/specmae_multilabel.yaml", "predictions/multilabel_epoch*.png"),
    "cd": ("configs/specmae_cd.yaml", "predictions/segmentation_epoch*.png"),
    "objext": ("configs/specmae_objext.yaml", "predictions/segmentation_epoch*.png"),
    "det": ("configs/specmae_det.yaml", "predictions/detection_epoch*.png"),
}
PREDICT_TASKS = ("hsi_cls", "scene")


def terratorch(*args: str) -> None:
    result = subprocess.run([TERRATORCH, *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"terratorch {' '.join(args)} failed:\n{result.stderr[-4000:]}")


def last(run: Path, pattern: str) -> Path:
    found = sorted(run.rglob(pattern))
    if not found:
        raise FileNotFoundError(f"No picture matching {pattern} under {run}.")
    return found[-1]


def mosaic_val_area(path: Path) -> Path:
    """The Olinda validation chips mosaicked into one 96 × 349 px scene (larger than a chip)."""
    import rasterio
    import rasterio.merge

    sources = [rasterio.open(c) for c in sorted((ROOT / "examples/data/olinda_l7/val/images").glob("*.tif"))]
    mosaic, transform = rasterio.merge.merge(sources)
    profile = {**sources[0].profile, "height": mosaic.shape[1], "width": mosaic.shape[2], "transform": transform}
    for src in sources:
        src.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mosaic)
    return path


def run_task(task: str, work: Path, extra: list[str]) -> Path:
    run = work / task
    if task in FIT_TASKS:
        config, pattern = FIT_TASKS[task]
        terratorch("fit", "-c", config, *extra, f"--trainer.default_root_dir={run}")
        return last(run, pattern)
    if task == "hsi_cls":  # pixel classification → the scene's class map
        terratorch("fit", "-c", "configs/specmae_hsi_cls.yaml", *extra, f"--trainer.default_root_dir={run}")
        terratorch("predict", "-c", "configs/specmae_hsi_cls.yaml", f"--ckpt_path={last(run, 'last.ckpt')}",
                   f"--predict_output_dir={run / 'maps'}", f"--trainer.default_root_dir={run / 'predict'}")  # fmt: skip
        return run / "maps" / "class_map.png"
    if task == "scene":  # segmentation of a scene larger than the chips, tile by tile
        seg = work / "seg"
        if not list(seg.rglob("last.ckpt")):
            terratorch("fit", "-c", "configs/specmae_seg.yaml", *extra, f"--trainer.default_root_dir={seg}")
        scene = mosaic_val_area(run / "olinda_val_area.tif")
        terratorch("predict", "-c", "configs/specmae_seg.yaml", "-c", "configs/predict_scene.yaml",
                   f"--ckpt_path={last(seg, 'last.ckpt')}", f"--data.init_args.scene={scene}",
                   f"--predict_output_dir={run / 'maps'}", f"--trainer.default_root_dir={run / 'predict'}")  # fmt: skip
        return run / "maps" / "olinda_val_area_pred.png"
    raise ValueError(f"Unknown task {task!r}; expected one of {[*FIT_TASKS, *PREDICT_TASKS]}.")


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=[*FIT_TASKS, *PREDICT_TASKS], help="tasks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="one short epoch per task")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/gallery")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.only or [*FIT_TASKS, *PREDICT_TASKS]:
            picture = run_task(task, Path(tmp), QUICK if args.quick else [])
            written.append(Path(shutil.copyfile(picture, args.out / f"{task}.png")))
            print(f"{task}: {written[-1]}", flush=True)
    return written


if __name__ == "__main__":
    main()

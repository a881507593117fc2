"""Nothing lost when a run or a write is interrupted: atomic writes, and output folders never clobbered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import matplotlib.pyplot as plt
import numpy as np
import pytest
import rasterio
import torch
import yaml
from cli_runner import CUSTOM_MODULES, TERRATORCH, run_cli
from rasterio.transform import from_origin
from terratorch.tasks import SemanticSegmentationTask

from terratorch_specmae.atomic import (
    OutputExistsError,
    PendingFile,
    atomic_folder,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
)
from terratorch_specmae.callbacks import SceneWriter
from terratorch_specmae.cli import export_checkpoint, export_spectralgpt
from terratorch_specmae.cli import main as weights_cli
from terratorch_specmae.datamodules import SceneTilesDataModule
from terratorch_specmae.models import SpectralMAE
from terratorch_specmae.plotting import save_figure
from terratorch_specmae.tasks import SpectralMAETask

ROOT = Path(__file__).resolve().parents[1]
TRANSFORM = from_origin(290_000, 9_120_000, 28.5, 28.5)


def temporaries(folder: Path) -> list[str]:
    """Temporary names the atomic writers use (``.<name>.<pid>.<random>.tmp``), anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*.tmp"))


# ---- the helpers


def test_an_exception_inside_atomic_path_keeps_the_earlier_file(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"earlier, complete")
    with pytest.raises(RuntimeError, match="interrupted"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".data.bin.") and tmp.suffix == ".tmp"
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"earlier, complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]

    atomic_write_bytes(target, b"new")
    atomic_write_text(tmp_path / "sub" / "note.txt", "héllo\r\n")  # the folder is created, the text kept as given
    assert target.read_bytes() == b"new" and (tmp_path / "sub" / "note.txt").read_bytes() == "héllo\r\n".encode()
    assert temporaries(tmp_path) == []


def test_a_new_folder_appears_only_complete(tmp_path):
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "weights") as folder:
        (folder / "config.json").write_text("{}")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary
    with atomic_folder(tmp_path / "weights") as folder:
        assert not (tmp_path / "weights").exists()
        (folder / "config.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(NotADirectoryError, match="file'? is a file; expected a folder"),
        atomic_folder(tmp_path / "file"),
    ):
        pass


def test_save_figure_keeps_the_format_and_an_earlier_picture_on_failure(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    png, pdf = save_figure(fig, tmp_path / "a.png"), None
    assert png.read_bytes()[:4] == b"\x89PNG"
    fig, ax = plt.subplots()
    pdf = save_figure(fig, tmp_path / "a.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"

    before = png.read_bytes()
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ax.add_artist(_Failing())
    with pytest.raises(RuntimeError, match="drawing failed"):
        save_figure(fig, png)
    assert png.read_bytes() == before and temporaries(tmp_path) == []
    assert not plt.fignum_exists(fig.number)  # closed all the same


class _Failing(plt.Artist):
    def draw(self, renderer):
        raise RuntimeError("drawing failed")


# ---- specmae-weights: output folders


MAE_ARGS = {"model": "s2mae_vit_tiny_mae", "bands": "landsat7", "img_size": 32, "decoder_embed_dim": 32,
            "decoder_depth": 1, "decoder_num_heads": 2}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A pretraining run as LightningCLI leaves it: <root>/config.yaml and <root>/checkpoints/last.ckpt."""
    root = tmp_path_factory.mktemp("run")
    task = SpectralMAETask(model_args=MAE_ARGS)
    (root / "checkpoints").mkdir()
    ckpt = root / "checkpoints" / "last.ckpt"
    hparams = {**dict(task.hparams), "model_args": dict(MAE_ARGS)}
    torch.save({"state_dict": task.state_dict(), "epoch": 1, "global_step": 2, "hyper_parameters": hparams}, ckpt)
    (root / "config.yaml").write_text(yaml.safe_dump({"data": {"init_args": {"train_data_root": "chips"}}}))
    return ckpt, task.model


def users_folder(path: Path) -> Path:
    """A folder with the user's own model card and notes in it."""
    path.mkdir(parents=True)
    (path / "README.md").write_bytes(b"# My own notes on these weights\n")
    (path / "notes.txt").write_bytes(b"do not lose me\n")
    return path


def test_export_refuses_a_non_empty_folder_before_reading_the_checkpoint(run, tmp_path):
    ckpt, _ = run
    out = users_folder(tmp_path / "mine")
    for source in (tmp_path / "missing.ckpt", ckpt):  # a missing checkpoint: the folder is checked first
        with pytest.raises(FileExistsError) as err:
            export_checkpoint(source, out)
        message = str(err.value)
        assert str(out) in message and "README.md, notes.txt" in message and "--overwrite" in message
    with pytest.raises(FileExistsError, match="holds README.md, notes.txt"):
        export_spectralgpt(tmp_path / "missing.pth", out)
    assert (out / "README.md").read_bytes() == b"# My own notes on these weights\n"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "notes.txt"]

    empty = tmp_path / "empty"
    empty.mkdir()
    export_checkpoint(ckpt, empty)  # an empty folder is fine
    assert sorted(p.name for p in empty.iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_overwrite_replaces_only_the_files_the_export_writes(run, tmp_path):
    ckpt, model = run
    out = users_folder(tmp_path / "mine")
    export_checkpoint(ckpt, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "notes.txt"]
    assert (out / "notes.txt").read_bytes() == b"do not lose me\n"
    card = (out / "README.md").read_text()
    assert "My own notes" not in card and "SpectralMAE" in card
    loaded = SpectralMAE.from_pretrained(out)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_an_output_path_that_is_a_file_is_a_clear_error(run, tmp_path):
    ckpt, _ = run
    out = tmp_path / "weights.safetensors"
    out.write_bytes(b"someone's file")
    for overwrite in (False, True):
        with pytest.raises(NotADirectoryError, match=r"weights.safetensors'? is a file; expected a folder"):
            export_checkpoint(ckpt, out, overwrite=overwrite)
    assert out.read_bytes() == b"someone's file"


def test_the_command_reports_output_folder_errors_as_usage_errors(run, tmp_path, capsys):
    ckpt, _ = run
    out = users_folder(tmp_path / "mine")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for argv, expected in [
        (["export", str(ckpt), str(out)], "is not empty: it holds README.md, notes.txt"),
        (["convert-spectralgpt", str(tmp_path / "missing.pth"), str(out), "--mae"], "is not empty"),
        (["export", str(ckpt), str(a_file), "--overwrite"], "is a file; expected a folder"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            weights_cli(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2, argv
        assert f"specmae-weights {argv[0]}: error: " in err and expected in err and "Traceback" not in err
        assert f"{argv[2]!r}" in err  # names the folder (or file)
    assert (out / "README.md").read_bytes() == b"# My own notes on these weights\n"

    weights_cli(["export", str(ckpt), str(out), "--overwrite"])
    assert "written to" in capsys.readouterr().out
    assert (out / "notes.txt").exists() and (out / "model.safetensors").exists() and temporaries(tmp_path) == []


# ---- exclusive outputs: two runs writing one path at once never replace each other's work


def test_an_exclusive_file_or_folder_that_appeared_meanwhile_is_left_as_it_is(tmp_path):
    path = tmp_path / "out.bin"
    pending = PendingFile(path)
    pending.tmp.write_bytes(b"ours")
    path.write_bytes(b"theirs")  # another writer got there first
    with pytest.raises(OutputExistsError, match=r"out.bin' appeared while this output was being written .*not written"):
        pending.commit(exclusive=True)
    assert path.read_bytes() == b"theirs" and temporaries(tmp_path) == []
    with atomic_path(tmp_path / "new.bin", exclusive=True) as tmp:
        tmp.write_bytes(b"fresh")
    assert (tmp_path / "new.bin").read_bytes() == b"fresh"

    folder = tmp_path / "folder"
    with pytest.raises(OutputExistsError, match=r"folder' appeared while this output was being written"):
        with atomic_folder(folder, exclusive=True) as inside:
            (inside / "a.txt").write_text("ours")
            folder.mkdir()
            (folder / "a.txt").write_text("theirs")
    assert (folder / "a.txt").read_text() == "theirs" and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(OutputExistsError, match="is not empty; expected a new or empty folder"):
        with atomic_folder(folder, exclusive=True):
            pass


CONCURRENT_EXPORT = """
import sys, time
from terratorch_specmae.cli import main
start = float(sys.argv[3])
while time.time() < start:  # both processes start exporting at the same moment, after their imports
    time.sleep(0.001)
main(["export", sys.argv[1], sys.argv[2]])
"""


@pytest.mark.slow
def test_two_exports_into_one_new_folder_at_once_one_fails_clearly_and_nothing_is_mixed(run, tmp_path):
    ckpt, model = run
    out = tmp_path / "weights"
    start = time.time() + 40  # past both imports of TerraTorch (~20 s each, in parallel)
    processes = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT_EXPORT, str(ckpt), str(out), str(start)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in processes]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    (_, _, err), = [r for r in results if r[0] == 2]
    assert "error:" in err and "weights" in err and ("appeared while this output was being written" in err or "is not empty" in err), err
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = SpectralMAE.from_pretrained(out)  # one run's complete, consistent folder
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert temporaries(tmp_path) == [] and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ---- SceneWriter: an interrupted prediction leaves an earlier map as it was


@pytest.fixture
def seg_task():
    torch.manual_seed(0)
    return SemanticSegmentationTask(
        model_factory="EncoderDecoderFactory",
        model_args={
            "backbone": "s2mae_vit_tiny", "backbone_bands": ["BLUE", "GREEN", "RED", "NIR_BROAD"], "backbone_img_size": 32,
            "backbone_patch_size": 8, "backbone_depth": 2, "backbone_fold": "concat",
            "necks": [{"name": "SelectIndices", "indices": [0, 1]}, {"name": "ReshapeTokensToImage", "remove_cls_token": False}],
            "decoder": "FCNDecoder", "decoder_channels": 8, "num_classes": 3,
        },
    ).eval()  # fmt: skip


def write_raster(path: Path, data: np.ndarray, nodata=None) -> Path:
    profile = {"driver": "GTiff", "height": data.shape[1], "width": data.shape[2], "count": data.shape[0],
               "dtype": data.dtype.name, "crs": "EPSG:31985", "transform": TRANSFORM, "nodata": nodata}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


class Interrupt(pl.Callback):
    """Fails the prediction after ``after`` batches, once the writer (listed before it) has written them."""

    def __init__(self, after: int = 1):
        self.after = after

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx + 1 >= self.after:
            raise RuntimeError("interrupted")


def test_an_interrupted_scene_prediction_keeps_the_earlier_map(seg_task, tmp_path):
    scene = np.random.default_rng(0).uniform(40, 120, (4, 64, 64)).astype(np.float32)
    dm = SceneTilesDataModule(str(write_raster(tmp_path / "scene.tif", scene)), crop=32, stride=32, batch_size=2,
                              means=[80.0, 70.0, 60.0, 90.0], stds=[10.0, 12.0, 14.0, 16.0])  # fmt: skip
    maps = tmp_path / "maps"
    maps.mkdir()
    earlier = write_raster(maps / "scene_pred.tif", np.full((1, 64, 64), 7, np.uint8), nodata=255).read_bytes()
    (maps / "scene_pred.png").write_bytes(b"earlier picture")

    writer = SceneWriter(out_dir=str(maps), overwrite=True)
    trainer = pl.Trainer(
        accelerator="cpu", callbacks=[writer, Interrupt(after=1)], logger=False, enable_progress_bar=False
    )
    with pytest.raises(RuntimeError, match="interrupted"):
        trainer.predict(seg_task, datamodule=dm, return_predictions=False)
    assert (maps / "scene_pred.tif").read_bytes() == earlier
    assert (maps / "scene_pred.png").read_bytes() == b"earlier picture"
    assert sorted(p.name for p in maps.iterdir()) == ["scene_pred.png", "scene_pred.tif"]

    writer = SceneWriter(out_dir=str(maps), overwrite=True)  # a run told to overwrite, that completes, replaces both
    trainer = pl.Trainer(accelerator="cpu", callbacks=[writer], logger=False, enable_progress_bar=False)
    trainer.predict(seg_task, datamodule=dm, return_predictions=False)
    assert writer.written == [maps / "scene_pred.tif", maps / "scene_pred.png"]
    assert sorted(p.name for p in maps.iterdir()) == ["scene_pred.png", "scene_pred.tif"]
    with rasterio.open(maps / "scene_pred.tif") as src:
        classes = src.read(1)
        assert src.transform == TRANSFORM and src.nodata == 255
    assert classes.shape == (64, 64) and classes.max() < 3  # the model's classes, not the earlier 7s
    assert (maps / "scene_pred.png").read_bytes()[:4] == b"\x89PNG"


class Meanwhile(pl.Callback):
    """Another run's files appear in the output folder after the first batch (``names`` → bytes)."""

    def __init__(self, folder: Path, names: dict[str, bytes]):
        self.folder, self.names = folder, names

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0:
            for name, data in self.names.items():
                (self.folder / name).write_bytes(data)


def _scene_module(tmp_path):
    scene = np.random.default_rng(0).uniform(40, 120, (4, 64, 64)).astype(np.float32)
    return SceneTilesDataModule(str(write_raster(tmp_path / "scene.tif", scene)), crop=32, stride=32, batch_size=2,
                                means=[80.0, 70.0, 60.0, 90.0], stds=[10.0, 12.0, 14.0, 16.0])  # fmt: skip


def test_a_prediction_is_created_never_replaced_and_its_map_and_picture_are_one_unit(seg_task, tmp_path):
    dm, maps = _scene_module(tmp_path), tmp_path / "maps"
    maps.mkdir()
    (maps / "scene_pred.png").write_bytes(b"earlier picture")  # an earlier run's: refused before predicting
    trainer = pl.Trainer(accelerator="cpu", callbacks=[SceneWriter(out_dir=str(maps))], logger=False, enable_progress_bar=False)
    with pytest.raises(FileExistsError, match=r"scene_pred.png already there: a prediction is created, never replaced.*"
                       r"--predict_output_dir, or set SceneWriter's overwrite: true"):  # fmt: skip
        trainer.predict(seg_task, datamodule=dm, return_predictions=False)
    assert sorted(p.name for p in maps.iterdir()) == ["scene_pred.png"]

    # another run's map and picture appear while this one predicts: theirs stay, ours is not written
    for theirs in ({"scene_pred.tif": b"their map", "scene_pred.png": b"their picture"}, {"scene_pred.png": b"their picture"}):
        for path in maps.iterdir():
            path.unlink()
        callbacks = [SceneWriter(out_dir=str(maps)), Meanwhile(maps, theirs)]
        trainer = pl.Trainer(accelerator="cpu", callbacks=callbacks, logger=False, enable_progress_bar=False)
        with pytest.raises(OutputExistsError, match=r"scene_pred\.(tif|png)' appeared while this output was being written"):
            trainer.predict(seg_task, datamodule=dm, return_predictions=False)
        assert {p.name: p.read_bytes() for p in maps.iterdir()} == theirs  # no map of ours beside their picture

    for path in maps.iterdir():
        path.unlink()
    writer = SceneWriter(out_dir=str(maps))
    pl.Trainer(accelerator="cpu", callbacks=[writer], logger=False, enable_progress_bar=False).predict(
        seg_task, datamodule=dm, return_predictions=False
    )
    assert sorted(p.name for p in maps.iterdir()) == ["scene_pred.png", "scene_pred.tif"]


# ---- a real kill


@pytest.mark.slow
def test_terratorch_predict_killed_mid_scene_keeps_the_earlier_map(tmp_path):
    """``terratorch predict`` with configs/predict_scene.yaml, SIGKILLed while SceneWriter fills the map
    (a real process, to kill; the model it predicts with is fitted in this one)."""
    env = {k: v for k, v in os.environ.items() if k != CUSTOM_MODULES}
    # (limit_train_batches=1 would be read as 1.0, every batch: jsonargparse hands Lightning a float)
    quick = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]
    run_cli("fit", "-c", "configs/specmae_seg.yaml", *quick, f"--trainer.default_root_dir={tmp_path / 'fit'}")
    (ckpt,) = (tmp_path / "fit").rglob("last.ckpt")

    # 3249 tiles (stride 8) in batches of 2: far more than the moments between the temporary appearing and the kill
    scene = write_raster(
        tmp_path / "scene.tif", np.random.default_rng(0).uniform(40, 120, (6, 512, 512)).astype(np.float32)
    )
    maps = tmp_path / "maps"
    maps.mkdir()
    earlier = write_raster(maps / "scene_pred.tif", np.ones((1, 512, 512), np.uint8), nodata=255).read_bytes()
    (maps / "scene_pred.png").write_bytes(b"earlier picture")

    log = tmp_path / "predict.log"
    replacing = tmp_path / "predict_scene_overwrite.yaml"  # this run is told to replace the earlier map
    config = yaml.safe_load((ROOT / "configs/predict_scene.yaml").read_text())
    config["trainer"]["callbacks"][0]["init_args"] = {"overwrite": True}
    replacing.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [TERRATORCH, "predict", "-c", "configs/specmae_seg.yaml", "-c", str(replacing), f"--ckpt_path={ckpt}",
         f"--data.init_args.scene={scene}", "--data.init_args.stride=8", "--data.init_args.batch_size=2",
         "--trainer.accelerator=cpu", f"--predict_output_dir={maps}", f"--trainer.default_root_dir={tmp_path / 'predict'}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while not temporaries(maps) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert temporaries(maps), f"the map's temporary never appeared:\n{log.read_text()[-4000:]}"
        time.sleep(1.0)  # into the batches
        assert process.poll() is None, (
            f"predict ended before it could be killed, proving nothing:\n{log.read_text()[-4000:]}"
        )
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert (maps / "scene_pred.tif").read_bytes() == earlier
    assert (maps / "scene_pred.png").read_bytes() == b"earlier picture"
    (stray,) = temporaries(maps)  # SIGKILL runs no clean-up: one hidden temporary is left beside the map
    assert stray.startswith(".scene_pred.tif.") and stray.endswith(".tmp")

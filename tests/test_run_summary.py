"""What a run prints: the summary at its end (RunSummary), and nothing a user cannot act on.

The main job (configs/specmae_seg.yaml) is fitted once in this process (tests/cli_runner.py's
``run_cli``) with its standard output and its warnings recorded; validate, test and a scene
prediction (a real ``terratorch`` process: the stray message came at interpreter exit) start from
its checkpoint.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import pytest
import torch
from cli_runner import ROOT, only, run_cli, terratorch_process
from torchmetrics import ClasswiseWrapper, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from terratorch_specmae import callbacks
from terratorch_specmae.tasks.metrics import CountedClasswiseWrapper, count_group_updates

SEG = "configs/specmae_seg.yaml"
QUICK = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]
BEFORE_UPDATE = "was called before the ``update`` method"


def run_recorded(*args: str):
    """``run_cli(*args)`` → (cli, what it printed, the warnings it raised, every one recorded)."""
    printed = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        warnings.simplefilter("always")
        cli = run_cli(*args)
    return cli, printed.getvalue(), caught


@pytest.fixture(scope="module")
def main_fit(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    cli, out, caught = run_recorded("fit", "-c", SEG, *QUICK, f"--trainer.default_root_dir={root}")
    return root, cli, out, caught


def row(out: str, name: str) -> str:
    """The summary table's line of metric ``name``."""
    (line,) = [line for line in out.splitlines() if line.strip("│| ").split(" ")[0] == name]
    return line


def value(cli, key: str) -> str:
    return f"{cli.trainer.callback_metrics[key].item():.4g}"


@pytest.mark.slow
def test_the_main_job_ends_with_its_summary(main_fit):
    root, cli, out, _ = main_fit
    summary = out[out.index("fit summary: 1 epoch, 2 steps") :]
    assert value(cli, "val/mIoU") in row(summary, "mIoU") and value(cli, "train/mIoU") in row(summary, "mIoU")
    assert value(cli, "val/IoU_water") in row(summary, "IoU_water")  # per class too
    lines = summary.splitlines()
    (best,) = [line for line in lines if line.startswith("best checkpoint (val/mIoU max = ")]
    checkpoints = cli.trainer.checkpoint_callback
    assert best.endswith(checkpoints.best_model_path) and f"= {checkpoints.best_model_score.item():.4g})" in best
    (last,) = [line.split()[-1] for line in lines if line.startswith("last checkpoint")]
    assert last == str(only(root.rglob("last.ckpt")))
    log_dir = Path(cli.trainer.logger.log_dir)
    assert [line.split()[-1] for line in lines if line.startswith(("pictures", "log dir"))] == [
        str(log_dir / "predictions"), str(log_dir),
    ]  # fmt: skip
    assert (log_dir / "predictions/segmentation_epoch000.png").is_file()


@pytest.mark.slow
def test_the_main_job_warns_of_nothing_a_user_cannot_act_on(main_fit):
    """No "compute before update" from the per-class metrics (a compute group's members were never counted
    as updated after the first epoch), no Lightning/torch LeafSpec deprecation; and the filter is gone after."""
    *_, caught = main_fit
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if BEFORE_UPDATE in m], messages
    assert not [m for m in messages if "LeafSpec" in m], messages
    assert not [f for f in warnings.filters if "LeafSpec" in str(f[1])]  # ignored only while the run lasted
    # what Python shows by default (not the deprecations of libraries to their developers), but this test's own
    # doing: arguments handed to LightningCLI in-process, and 2 training batches under log_every_n_steps=5
    ours = ("LightningCLI's args parameter is intended", "is smaller than the logging interval")
    shown = [
        m for w, m in zip(caught, messages)
        if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))
        and not any(text in m for text in ours)
    ]  # fmt: skip
    assert not shown, shown  # e.g. no "configure_optimizers will be overridden": the config uses the task's optimizer


@pytest.mark.slow
@pytest.mark.parametrize("subcommand", ["validate", "test"])
def test_validate_and_test_end_with_the_summary(main_fit, subcommand, tmp_path):
    root, *_ = main_fit
    ckpt = only(root.rglob("last.ckpt"))
    split = {"validate": "val", "test": "test"}[subcommand]
    cli, out, caught = run_recorded(
        subcommand, "-c", SEG, f"--ckpt_path={ckpt}", f"--trainer.limit_{split}_batches=1",
        f"--trainer.default_root_dir={tmp_path}",
    )  # fmt: skip
    summary = out[out.index(f"{subcommand} summary") :]
    assert value(cli, f"{split}/mIoU") in row(summary, "mIoU")
    assert f"checkpoint  {ckpt}" in summary and f"log dir     {cli.trainer.logger.log_dir}" in summary
    assert not [w for w in caught if BEFORE_UPDATE in str(w.message)]


def test_the_summary_in_plain_text_without_rich(monkeypatch, capsys):
    monkeypatch.setattr(callbacks, "_rich_console", lambda: None)
    facts = [("best checkpoint (val/mIoU max = 0.5)", "/runs/a.ckpt"), ("log dir", "/runs")]
    callbacks.print_summary("fit summary: 2 epochs, 8 steps", ["train", "val"], [("loss", ["1.2", "0.9"]),
                            ("mIoU", ["", "0.5"])], facts)  # fmt: skip
    assert capsys.readouterr().out.splitlines() == [
        "fit summary: 2 epochs, 8 steps",
        "metric  train  val",
        "------  -----  ---",
        "loss      1.2  0.9",
        "mIoU           0.5",
        "best checkpoint (val/mIoU max = 0.5)  /runs/a.ckpt",
        "log dir                               /runs",
    ]


def test_per_class_metrics_count_their_compute_groups_updates():
    """TerraTorch's collections: per-class accuracy shares its states with the macro accuracy, which alone
    is updated; its wrapped metric then warned at every compute after the first reset. Values are unchanged,
    and a collection really computed before any update still warns."""

    def collection():
        return MetricCollection({
            "Accuracy": MulticlassAccuracy(num_classes=3, average="macro"),
            "mIoU": MulticlassJaccardIndex(num_classes=3, average="macro"),
            "Class_Accuracy": ClasswiseWrapper(MulticlassAccuracy(num_classes=3, average=None), labels=list("abc")),
            "IoU": ClasswiseWrapper(MulticlassJaccardIndex(num_classes=3, average=None), labels=list("abc")),
        })  # fmt: skip

    counted, plain = torch.nn.Module(), collection()
    counted.metrics = collection()
    count_group_updates(counted)
    assert isinstance(counted.metrics["Class_Accuracy"], CountedClasswiseWrapper)
    for epoch in range(3):
        preds, target = torch.randint(0, 3, (2, 8, 8)), torch.randint(0, 3, (2, 8, 8))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            counted.metrics.update(preds, target)
            ours = counted.metrics.compute()
            counted.metrics.reset()
            plain.update(preds, target)
            theirs = plain.compute()
            plain.reset()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
        before_update = [str(w.message) for w in caught if BEFORE_UPDATE in str(w.message)]
        assert len(before_update) == (epoch > 0), before_update  # the plain collection's, from its 2nd epoch on
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counted.metrics.compute()
    assert any(BEFORE_UPDATE in str(w.message) for w in caught)


@pytest.mark.slow
def test_a_scene_prediction_exits_cleanly_and_names_its_map(main_fit, tmp_path):
    """The scene stayed open after prediction, and rasterio's ``__del__`` closing it at interpreter exit printed
    a bare "Error in sys.excepthook" (a real process: that happens at its exit). Now the datamodule closes it."""
    root, *_ = main_fit
    scene = min((ROOT / "examples/data/olinda_l7/val/images").glob("*.tif"))  # one 64 px chip: one tile
    maps = tmp_path / "maps"
    result = terratorch_process(
        "predict", "-c", SEG, "-c", "configs/predict_scene.yaml", f"--ckpt_path={only(root.rglob('last.ckpt'))}",
        f"--data.init_args.scene={scene}", f"--predict_output_dir={maps}", "--trainer.accelerator=cpu",
        f"--trainer.default_root_dir={tmp_path / 'predict'}",
    )  # fmt: skip
    assert "Error in sys.excepthook" not in result.stderr, result.stderr[-3000:]
    assert "Original exception was" not in result.stderr, result.stderr[-3000:]
    written = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("written")]
    assert written == [str(maps / f"{scene.stem}_pred.tif"), str(maps / f"{scene.stem}_pred.png")], result.stdout

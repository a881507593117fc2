"""Runs that are interrupted, resumed or repeated: nothing is lost, last.ckpt is the last epoch, and
same-seed runs are identical. The ``terratorch`` runs are slow; they run in this process (``run_cli``)
but where a real process is the point: the run that is killed, and one of the same-seed runs."""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from cli_runner import CUSTOM_MODULES, ROOT, TERRATORCH, only, run_cli, terratorch_process

CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def _checkpoint_callbacks(config: dict) -> list[dict]:
    return [c.get("init_args") or {} for c in (config.get("trainer") or {}).get("callbacks") or []
            if c["class_path"].endswith("ModelCheckpoint")]  # fmt: skip


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_every_config_keeps_last_ckpt_at_the_last_epoch_and_seeds_augmentations(path):
    """A monitored ModelCheckpoint with save_last rewrites last.ckpt only when the monitor improves
    (Lightning 2.x), so every config that checkpoints has a monitor-less one writing last.ckpt; and
    every config that fits with albumentations seeds them (SeedAugmentations)."""
    config = yaml.safe_load(path.read_text())
    checkpoints = _checkpoint_callbacks(config)
    if checkpoints:
        last = [c for c in checkpoints if c.get("monitor") is None]
        assert len(last) == 1 and last[0].get("filename") == "last" and last[0].get("enable_version_counter") is False, checkpoints
        assert not any(c.get("save_last") for c in checkpoints if c.get("monitor")), checkpoints
    transforms = (config.get("data") or {}).get("init_args", {}).get("train_transform")
    if transforms and any("albumentations" in t.get("class_path", "") and "ToTensor" not in t["class_path"] for t in transforms):
        callbacks = [c["class_path"] for c in config["trainer"]["callbacks"]]
        assert "terratorch_specmae.callbacks.SeedAugmentations" in callbacks, callbacks


def _state(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_last_ckpt_is_the_last_epoch_when_the_monitor_did_not_improve(tmp_path):
    """The best-checkpoint callback is made to keep its worst epoch (mode max on a falling loss), where
    the old configs' save_last left last.ckpt behind; last.ckpt must be the final epoch and step."""
    config = yaml.safe_load((ROOT / "configs/specmae_pretrain_s2mae.yaml").read_text())
    for callback in config["trainer"]["callbacks"]:
        if callback["class_path"].endswith("ModelCheckpoint") and callback["init_args"].get("monitor"):
            callback["init_args"]["mode"] = "max"  # "improves" only if the validation loss rises
    path = tmp_path / "s2mae.yaml"
    path.write_text(yaml.safe_dump(config))
    run_cli("fit", "-c", str(path), "--trainer.max_epochs=3", "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1", f"--trainer.default_root_dir={tmp_path}")  # fmt: skip
    last = _state(only(tmp_path.rglob("last.ckpt")))
    assert (last["epoch"], last["global_step"]) == (2, 6)
    best = only(p for p in tmp_path.rglob("*.ckpt") if p.name != "last.ckpt")
    assert best.name.startswith("epoch=")  # the monitored callback's own file, beside last.ckpt


@pytest.mark.slow
def test_same_seed_runs_are_identical(tmp_path):
    """Two uninterrupted runs of a shipped config (D4 augmentation, random 3D masks) with
    seed_everything 0 end with bitwise equal weights; with another seed they differ. Run "a" is a
    fresh process and "b" this one, so that nothing a process draws for itself (its hash seed, say)
    can hide behind the comparison."""
    states = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run = terratorch_process if name == "a" else run_cli
        run("fit", "-c", "configs/specmae_pretrain_s2mae.yaml", "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=1", f"--seed_everything={seed}",
            f"--trainer.default_root_dir={tmp_path / name}")  # fmt: skip
        states[name] = _state(only((tmp_path / name).rglob("last.ckpt")))["state_dict"]
    assert states["a"].keys() == states["b"].keys()
    for key in states["a"]:
        assert torch.equal(states["a"][key], states["b"][key]), key
    assert any(not torch.equal(states["a"][k], states["c"][k]) for k in states["a"])


def _snapshot(root: Path) -> dict[Path, str]:
    """sha256 of every file under root (temporary names of interrupted writes left out)."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".tmp")}  # fmt: skip


def _progress_log(version_dir: Path) -> list[tuple[int, float]]:
    with open(version_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/progress")]
    return [(int(r["step"]), float(r["train/progress"])) for r in rows]


@pytest.mark.slow
def test_a_killed_pretraining_run_resumes_from_last_ckpt(tmp_path):
    """kill -9 a SIGMAE pretraining run once its first last.ckpt is written; resume with
    --ckpt_path last.ckpt: the run completes, the curriculum continues from the restored step (not
    from 0), the saliency pictures of points already passed are not redrawn, and every file
    written before the kill is still there, unchanged."""
    epochs, batches = 4, 2  # killed once its first last.ckpt is written (epoch 0): epochs left to resume
    common = ["-c", "configs/specmae_pretrain_sigmae.yaml", f"--trainer.max_epochs={epochs}",
              f"--trainer.limit_train_batches={batches}", "--trainer.limit_val_batches=1",
              "--trainer.log_every_n_steps=1", f"--trainer.default_root_dir={tmp_path}",
              "--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.init_args.save_dir={tmp_path}"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != CUSTOM_MODULES}
    run = subprocess.Popen([TERRATORCH, "fit", *common], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while not list(tmp_path.rglob("last.ckpt")):
            assert run.poll() is None, f"the run ended before its first checkpoint:\n{run.stderr.read().decode()[-4000:]}"
            assert time.monotonic() < deadline, "no last.ckpt after 10 minutes"
            time.sleep(0.02)
        os.killpg(run.pid, signal.SIGKILL)
    finally:
        run.wait(timeout=60)
        run.stderr.close()
    assert run.returncode == -signal.SIGKILL
    before = _snapshot(tmp_path)
    killed_ckpt = only(tmp_path.rglob("last.ckpt"))
    restored = _state(killed_ckpt)
    assert restored["epoch"] < epochs - 1, "the run finished before the kill: nothing to resume"
    restored_step = restored["global_step"]

    run_cli("fit", *common, f"--ckpt_path={killed_ckpt}")  # the resumed run need not be another process
    after = _snapshot(tmp_path)
    changed = [p for p, digest in before.items() if after.get(p) != digest]
    assert not changed, f"files written before the kill were changed or lost: {changed}"

    versions = sorted(p.parent for p in tmp_path.rglob("metrics.csv"))
    assert len(versions) == 2, versions
    resumed = versions[-1]
    final = _state(only(resumed.rglob("last.ckpt")))
    total = epochs * batches
    assert (final["epoch"], final["global_step"]) == (epochs - 1, total)
    progress = _progress_log(resumed)
    first_step, first_progress = progress[0]
    assert first_step >= restored_step and first_progress == pytest.approx(restored_step / total)
    assert progress[-1][1] == pytest.approx((total - 1) / total)
    # SaliencyMaskPNGs at [0, 0.5, 1]: the resumed run draws only the points it has not passed
    pending = [p for p in (0.0, 0.5, 1.0) if p >= restored_step / total]
    assert len(list((resumed / "saliency").glob("*.png"))) == len(pending)

"""GEO-Bench-2 through ``terratorch iterate``: the fake data in GEO-Bench-2's layout, the shipped
configs (``configs/benchmarks/geobench2_*.yaml``), the ``custom_modules_path`` route by which
terratorch-iterate imports us, and the whole run (HPO, then repeated seeds) on the fake data.

Needs the ``bench`` extra (terratorch-iterate, geobench_v2, ray); skipped without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch
import yaml
from cli_runner import ROOT, restored_global_state
from data.sentinel2 import S2_BAND_LEVEL, S2_MAX_DEVIATION

from terratorch_specmae.bands import resolve_bands

geobench_v2 = pytest.importorskip("geobench_v2", reason="GEO-Bench-2 tests need geobench_v2 (the bench extra)")
from data.geobench.data import BENV2_LABELS, BENV2_S2_BANDS, BURN_SCARS_BANDS, SPLITS, make_geobench  # noqa: E402  (pyarrow comes with it)

CONFIGS = {"s2mae": ROOT / "configs/benchmarks/geobench2_s2mae.yaml", "sigmae": ROOT / "configs/benchmarks/geobench2_sigmae.yaml"}
PLUGIN = "configs/benchmarks/specmae_plugin"


@pytest.fixture(scope="module")
def geobench_root(tmp_path_factory) -> Path:
    return make_geobench(tmp_path_factory.mktemp("geobench2"))


def test_fake_data_reads_through_geobench_v2(geobench_root):
    """The tortilla files are what geobench_v2's datasets read: splits, band order, dtypes, labels."""
    from geobench_v2.datasets import GeoBenchBENV2, GeoBenchBurnScars
    from torch import nn

    for split, n in SPLITS.items():
        burn = GeoBenchBurnScars(geobench_root / "burn_scars", split=split, data_normalizer=nn.Identity)
        assert len(burn) == n
    sample = burn[0]
    assert sample["image"].shape == (6, 64, 64) and sample["image"].dtype == torch.float32
    means = sample["image"].mean(dim=(1, 2)) * 1e4  # reflectance back to the fake levels
    for band, mean in zip(BURN_SCARS_BANDS, means.tolist(), strict=True):
        assert abs(mean - S2_BAND_LEVEL[band]) <= S2_MAX_DEVIATION, band
    assert set(sample["mask"].unique().tolist()) == {0, 1, 2}  # nodata (-1) became 2
    assert sample["mask"][:4, :4].eq(2).all()

    benv2 = GeoBenchBENV2(geobench_root / "benv2", split="val", band_order={"s2": list(BENV2_S2_BANDS), "s1": ["VV", "VH"]},
                          return_stacked_image=True, data_normalizer=nn.Identity, metadata=["lon", "lat"])
    assert len(benv2) == SPLITS["validation"]
    sample = benv2[1]
    assert sample["image"].shape == (14, 120, 120)
    for band, mean in zip(BENV2_S2_BANDS, sample["image"][:12].mean(dim=(1, 2)).tolist(), strict=True):
        assert abs(mean - S2_BAND_LEVEL[band]) <= S2_MAX_DEVIATION, band
    assert sample["image"][12].mean() == pytest.approx(-11.0, abs=2) and sample["image"][13].mean() == pytest.approx(-18.0, abs=2)
    assert sample["label"].shape == (len(BENV2_LABELS),) and 1 <= int(sample["label"].sum()) <= 2
    assert -180 <= float(sample["lon"]) <= 180


def import_iterate(module: str, folder: Path):
    """Import ``module`` of terratorch-iterate without its import's side effects on the test session:
    terratorch-iterate writes ``./experiment_logs/<time>`` and adds a file handler for it to the root
    logger when imported, so import it from ``folder`` and put the logging handlers back after."""
    with restored_global_state():
        os.chdir(folder)
        return pytest.importorskip(module, reason="needs terratorch-iterate (the bench extra)")


def iterate_parser(folder: Path):
    """terratorch-iterate 0.4's own types for the config keys (``terratorch_iterate.main`` adds the same)."""
    types_module = import_iterate("terratorch_iterate.iterate_types", folder)
    Defaults, Task = types_module.Defaults, types_module.Task
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    for name, kind in (("defaults", Defaults), ("tasks", list[Task]), ("optimization_space", dict),
                       ("experiment_name", str), ("run_name", str), ("storage_uri", str), ("n_trials", int),
                       ("run_repetitions", int), ("custom_modules_path", str), ("save_models", bool),
                       ("test_models", bool), ("report_on_best_val", bool), ("bayesian_search", bool)):
        parser.add_argument(f"--{name}", type=kind)
    return parser


@pytest.mark.parametrize("family", CONFIGS)
def test_shipped_configs_parse_with_iterates_types_and_name_our_models(family, geobench_root, monkeypatch, tmp_path):
    parser = iterate_parser(tmp_path)
    monkeypatch.chdir(ROOT)
    config = parser.instantiate(parser.parse_path(str(CONFIGS[family])))
    assert config.custom_modules_path == PLUGIN and Path(config.custom_modules_path, "__init__.py").is_file()
    assert os.path.isabs(config.storage_uri)  # iterate 0.4 needs it (see the config's header)
    assert config.n_trials >= 1 and config.run_repetitions == 10
    model_args = config.defaults.terratorch_task["model_args"]
    assert model_args["backbone"] == f"{family}_vit_base"
    assert [t.name for t in config.tasks] == ["burn_scars", "benv2"]
    for task in config.tasks:
        bands = task.terratorch_task["model_args"]["backbone_bands"]
        resolve_bands(bands)  # our names
        order = task.datamodule._proxy.band_order
        assert list(order if isinstance(order, list) else order["s2"]) == bands  # the datamodule gives them in that order
        assert task.metric.startswith("val/") and task.direction == "max"
    from terratorch.registry import BACKBONE_REGISTRY

    assert model_args["backbone"] in BACKBONE_REGISTRY


def test_custom_modules_path_registers_our_backbones_in_a_fresh_process(tmp_path):
    """What terratorch-iterate does with ``custom_modules_path``, from a process that has not imported us."""
    code = (
        "import logging, os\n"
        "from terratorch.registry import BACKBONE_REGISTRY\n"
        "assert 's2mae_vit_tiny' not in BACKBONE_REGISTRY\n"
        "from terratorch_iterate.utils import import_custom_modules\n"
        f"import_custom_modules(logger=logging.getLogger('t'), custom_modules_path={str(ROOT / PLUGIN)!r})\n"
        "assert 's2mae_vit_tiny' in BACKBONE_REGISTRY and 'sigmae_vit_base' in BACKBONE_REGISTRY\n"
        "assert os.environ['MLFLOW_ALLOW_FILE_STORE'] == 'true'\n"
        "print('registered')\n"
    )
    import_iterate("terratorch_iterate", tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_ALLOW_FILE_STORE", "TERRATORCH_CUSTOM_MODULE_PATH")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "registered" in done.stdout, done.stderr[-3000:]


def tiny_config(path: Path, data: Path, out: Path, trials: int, seeds: int) -> Path:
    """The shipped config with tiny settings: a 4-block 16-wide encoder at 32 px, one epoch of two batches."""
    config = yaml.safe_load(path.read_text())
    config.update(storage_uri=str(out / "mlflow"), n_trials=trials, run_repetitions=seeds, experiment_name="smoke", run_name="smoke")
    config["defaults"]["trainer_args"] = {
        "accelerator": "cpu", "devices": 1, "precision": "32", "max_epochs": 1, "limit_train_batches": 2,
        "limit_val_batches": 1, "limit_test_batches": 1, "enable_model_summary": False, "enable_progress_bar": False,
        "default_root_dir": str(out),
    }
    model_args = config["defaults"]["terratorch_task"]["model_args"]
    model_args.update(backbone=model_args["backbone"].replace("_base", "_tiny"), backbone_img_size=32,
                      backbone_embed_dim=16, backbone_depth=4, backbone_num_heads=2)
    for task in config["tasks"]:
        task_args = task["terratorch_task"]["model_args"]
        task_args["backbone_out_indices"] = list(range(4))[-len(task_args["backbone_out_indices"]):]
        if "decoder_channels" in task_args:
            task_args["decoder_channels"] = 16
        task["early_stop_patience"] = None
        task["datamodule"]["init_args"].update(img_size=32, batch_size=2, num_workers=0)
        task["datamodule"]["dict_kwargs"].update(root=str(data / task["name"]), eval_batch_size=2, download=False)
    target = out / path.name
    target.write_text(yaml.safe_dump(config))
    return target


@pytest.mark.slow
@pytest.mark.parametrize("family", CONFIGS)
def test_terratorch_iterate_runs_hpo_and_repeated_seeds(family, geobench_root, tmp_path, monkeypatch):
    """``terratorch iterate --hpo --repeat`` on the shipped config (tiny settings, fake data), in this process."""
    config = tiny_config(CONFIGS[family], geobench_root, tmp_path, trials=2, seeds=2)
    monkeypatch.delitem(sys.modules, "specmae_plugin", raising=False)  # imported anew through custom_modules_path
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # which sets this (MLflow 3.17 needs it)
    with restored_global_state():  # iterate's import adds a log file handler to the root logger: put back after
        os.chdir(tmp_path)  # and writes ./experiment_logs there
        pytest.importorskip("terratorch_iterate.main", reason="needs terratorch-iterate and ray (the bench extra)")
        import terratorch_iterate.repeat_best_experiment as repeat
        from terratorch.__main__ import main as terratorch_main

        # iterate 0.4 sleeps 60 s after each repeated run (waiting for MLflow to settle); not needed for a local store
        monkeypatch.setattr(repeat, "time", types.SimpleNamespace(sleep=lambda seconds: None))
        started = time.perf_counter()
        os.chdir(ROOT)  # custom_modules_path is relative to the repository root, as the config's header says
        monkeypatch.setattr(sys, "argv", ["terratorch", "iterate", "--hpo", "--repeat", "--config", str(config)])
        terratorch_main()
        assert sys.modules["specmae_plugin"].__file__ == str(ROOT / PLUGIN / "__init__.py")
    print(f"iterate run: {time.perf_counter() - started:.1f} s")

    import mlflow
    import pandas as pd

    results = pd.read_csv(tmp_path / "repeated_exp_output_csv" / "smoke_repeated_exp_mlflow.csv")
    assert sorted(results["Task"]) == ["benv2", "benv2", "burn_scars", "burn_scars"]  # 2 seeds per task
    assert (results["mlflow_run_status"] == "FINISHED").all()
    assert results["Score"].between(0, 1).all() and results["Score"].notna().all()
    assert set(results.loc[results["Task"] == "burn_scars", "Metric"]) == {"mIoU"}
    assert set(results.loc[results["Task"] == "benv2", "Metric"]) == {"Multilabel_F1_Score"}
    seeds = {int(name.rsplit("_", 1)[1]) for name in results["mlflow_run_name"]}
    assert len(seeds) >= 2

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient(tracking_uri=str(tmp_path / "mlflow"))
    experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([experiment.experiment_id])
    task_runs = [r for r in runs if r.data.tags.get("backbone")]
    assert {r.data.tags["backbone"] for r in task_runs} == {f"{family}_vit_tiny"}
    assert {r.info.run_name for r in task_runs} == {"burn_scars", "benv2"}
    parents = {r.info.run_id: r.info.run_name for r in task_runs}
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in parents]
    names = sorted(r.info.run_name for r in trials)
    assert names == ["benv2_0", "benv2_1", "burn_scars_0", "burn_scars_1"], names  # 2 HPO trials per task
    assert all(r.info.status == "FINISHED" for r in trials)
    assert all("val/mIoU" in r.data.metrics or "val/Multilabel_F1_Score" in r.data.metrics for r in trials)

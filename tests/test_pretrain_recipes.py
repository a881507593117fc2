"""The paper-recipe pretraining configs in configs/pretrain/: each runs one batch (fast_dev_run) on fake
files in its corpus's real on-disk layout, with the ViT-B it names, on this machine's CPU in float32
(bf16 on a CPU without bf16 units is emulated: 148 s instead of 13 s here); only the trainer's
hardware settings, the data root and the batch size change from the YAML."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from cli_runner import ROOT, run_cli
from data.bigearthnet.data import make_bigearthnet
from data.ssl4eo.data import make_ssl4eo

from terratorch_specmae.tasks.optim import scaled_lr

RECIPES = {
    "s2mae_vit_base_ssl4eo": (lambda root: make_ssl4eo(root, locations=3, splits=("s2c",), size=132), 1.2e-3),
    "sigmae_vit_base_bigearthnet": (make_bigearthnet, 1.2e-3),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_config_runs_one_batch_of_its_corpus(name, tmp_path):
    make, paper_lr = RECIPES[name]
    path = ROOT / "configs" / "pretrain" / f"{name}.yaml"
    config = yaml.safe_load(path.read_text())
    trainer, data = config["trainer"], config["data"]["init_args"]
    task = config["model"]["init_args"]
    # the YAML's own numbers: global batch and MAE's scaled learning rate, bf16, DDP, mask ratio 0.9
    global_batch = data["batch_size"] * trainer["devices"] * trainer["num_nodes"] * trainer["accumulate_grad_batches"]
    assert global_batch == 2048 and math.isclose(scaled_lr(task["base_lr"], global_batch), paper_lr)
    assert trainer["precision"] == "bf16-mixed" and trainer["strategy"] == "ddp"
    assert task["model_args"]["mask_ratio"] == 0.9 and task["lr_schedule"] == "warmup_cosine"
    root = make(tmp_path / "corpus")
    cli = run_cli(
        "fit", "-c", str(path), "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.num_nodes=1",
        "--trainer.strategy=auto", "--trainer.precision=32", "--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path / 'run'}",
        f"--data.init_args.root={root}", "--data.init_args.batch_size=2", "--data.init_args.val_samples=1",
        "--data.init_args.num_workers=0",
    )  # fmt: skip
    mae = cli.model.model
    assert mae.encoder.embed_dim == 768 and len(mae.encoder.blocks) == 12  # ViT-B, as the papers
    assert mae.encoder.bands == tuple(data["bands"]) and mae.encoder.img_size == (128, 128)
    optimizer = cli.trainer.optimizers[0]
    assert optimizer.param_groups[0]["initial_lr"] == pytest.approx(scaled_lr(task["base_lr"], 2))  # batch 2, 1 device
    assert cli.trainer.global_step == 1
    logged = cli.trainer.callback_metrics
    assert torch.isfinite(logged["train/loss"]) and torch.isfinite(logged["val/loss"])

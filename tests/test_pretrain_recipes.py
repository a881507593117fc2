"""The paper-recipe pretraining configs in configs/pretrain/: each runs one batch (fast_dev_run) on fake
files in its corpus's real on-disk layout, with the ViT-B it names, on this machine's CPU in float32
(bf16 on a CPU without bf16 units is emulated: 148 s instead of 13 s here); only the trainer's
hardware settings, the data root and the batch size change from the YAML."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from cli_runner import ROOT, only, run_cli
from data.bigearthnet.data import make_bigearthnet
from data.fmow_sentinel.data import make_fmow_sentinel
from data.ssl4eo.data import make_ssl4eo

from terratorch_specmae.tasks.optim import scaled_lr

RECIPES = {
    "s2mae_vit_base_ssl4eo": (lambda root: make_ssl4eo(root, locations=3, splits=("s2c",), size=132), 1.2e-3),
    "sigmae_vit_base_bigearthnet": (make_bigearthnet, 1.2e-3),
}


CPU = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.num_nodes=1", "--trainer.strategy=auto",
       "--trainer.precision=32", "--data.init_args.batch_size=2", "--data.init_args.val_samples=1",
       "--data.init_args.num_workers=0"]  # fmt: skip


def check_paper_numbers(path, paper_lr: float) -> dict:
    """The YAML's own numbers: global batch 2048 and MAE's scaled learning rate, bf16, DDP, mask ratio 0.9."""
    config = yaml.safe_load(path.read_text())
    trainer, data = config["trainer"], config["data"]["init_args"]
    task = config["model"]["init_args"]
    global_batch = data["batch_size"] * trainer["devices"] * trainer["num_nodes"] * trainer["accumulate_grad_batches"]
    assert global_batch == 2048 and math.isclose(scaled_lr(task["base_lr"], global_batch), paper_lr)
    assert trainer["precision"] == "bf16-mixed" and trainer["strategy"] == "ddp"
    assert task["model_args"]["mask_ratio"] == 0.9 and task["lr_schedule"] == "warmup_cosine"
    return config


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_config_runs_one_batch_of_its_corpus(name, tmp_path):
    make, paper_lr = RECIPES[name]
    path = ROOT / "configs" / "pretrain" / f"{name}.yaml"
    config = check_paper_numbers(path, paper_lr)
    data, task = config["data"]["init_args"], config["model"]["init_args"]
    root = make(tmp_path / "corpus")
    cli = run_cli("fit", "-c", str(path), *CPU, "--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path / 'run'}",
                  f"--data.init_args.root={root}")  # fmt: skip
    mae = cli.model.model
    assert mae.encoder.embed_dim == 768 and len(mae.encoder.blocks) == 12  # ViT-B, as the papers
    assert mae.encoder.bands == tuple(data["bands"]) and mae.encoder.img_size == (128, 128)
    optimizer = cli.trainer.optimizers[0]
    assert optimizer.param_groups[0]["initial_lr"] == pytest.approx(scaled_lr(task["base_lr"], 2))  # batch 2, 1 device
    assert cli.trainer.global_step == 1
    logged = cli.trainer.callback_metrics
    assert torch.isfinite(logged["train/loss"]) and torch.isfinite(logged["val/loss"])


@pytest.mark.slow
def test_progressive_recipe_fmow_sentinel_96_px_then_bigearthnet_128_px(tmp_path):
    """S2MAE's two stages with ViT-B: one batch of fMoW-Sentinel at 96 px writes last.ckpt; stage 2 builds
    from it (every encoder block and the decoder are stage 1's, the spatial table resampled 12×12 → 16×16)
    and trains one batch of BigEarthNet at 128 px."""
    stage1 = ROOT / "configs/pretrain/s2mae_vit_base_fmow_sentinel.yaml"
    stage2 = ROOT / "configs/pretrain/s2mae_vit_base_bigearthnet_stage2.yaml"
    check_paper_numbers(stage1, 1.6e-3)
    check_paper_numbers(stage2, 8e-4)
    fmow = make_fmow_sentinel(tmp_path / "fmow")
    run_cli("fit", "-c", str(stage1), *CPU, "--trainer.max_epochs=1", "--trainer.limit_train_batches=1",
            "--trainer.limit_val_batches=1", f"--trainer.default_root_dir={tmp_path / 'stage1'}",
            f"--data.init_args.root={fmow}")  # fmt: skip
    ckpt = only((tmp_path / "stage1").rglob("last.ckpt"))
    first = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert first["model.encoder.pos_embed.spatial"].shape == (1, 144, 768)  # 96 px / 8 = 12 × 12
    ben = make_bigearthnet(tmp_path / "ben")
    cli = run_cli("-c", str(stage2), *CPU, "--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path / 'stage2'}",
                  f"--data.init_args.root={ben}", f"--model.init_args.model_args.ckpt_path={ckpt}", run=False)  # fmt: skip
    built = cli.model.model.state_dict()
    assert built["encoder.pos_embed.spatial"].shape == (1, 256, 768)  # 128 px / 8 = 16 × 16
    for key, value in built.items():
        if "pos_embed.spatial" not in key and key != "encoder.band_order":
            assert torch.equal(value, first[f"model.{key}"]), key
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step == 1 and torch.isfinite(cli.trainer.callback_metrics["train/loss"])


@pytest.mark.slow
def test_ssl4eo_recipe_streams_from_corpus_shards(tmp_path):
    """The SSL4EO-S12 recipe over LitData shards (StreamingCorpusDataModule): the shards written from the
    recipe's own corpus settings, then one batch with ViT-B; the same images per training run as the
    file-based recipe (every season a sample: a quarter of its epochs) and the same global batch and lr."""
    pytest.importorskip("litdata")
    from terratorch_specmae.datamodules import SSL4EOS12PretrainDataModule
    from terratorch_specmae.datamodules.streaming import write_corpus_shards

    files, shards = (ROOT / "configs/pretrain" / f"{name}.yaml" for name in ("s2mae_vit_base_ssl4eo", "s2mae_vit_base_ssl4eo_shards"))
    source, config = check_paper_numbers(files, 1.2e-3), check_paper_numbers(shards, 1.2e-3)
    assert config["trainer"]["max_epochs"] * 4 == source["trainer"]["max_epochs"]
    assert config["model"]["init_args"]["warmup_epochs"] * 4 == source["model"]["init_args"]["warmup_epochs"]
    assert config["model"]["init_args"]["model_args"] == source["model"]["init_args"]["model_args"]
    corpus = {**source["data"]["init_args"], "root": str(make_ssl4eo(tmp_path / "corpus", locations=3, splits=("s2c",), size=132)),
              "seasons": "all", "val_samples": 1}  # fmt: skip
    out = write_corpus_shards(SSL4EOS12PretrainDataModule(**corpus), tmp_path / "shards")
    cli = run_cli("fit", "-c", str(shards), "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.num_nodes=1",
                  "--trainer.strategy=auto", "--trainer.precision=32", "--data.init_args.batch_size=2",
                  "--data.init_args.num_workers=0", f"--data.init_args.input_dir={out}", "--trainer.fast_dev_run=1",
                  f"--trainer.default_root_dir={tmp_path / 'run'}")  # fmt: skip
    assert cli.datamodule.band_names == config["data"]["init_args"]["bands"] == corpus["bands"]
    assert cli.model.model.encoder.embed_dim == 768 and cli.trainer.global_step == 1
    logged = cli.trainer.callback_metrics
    assert torch.isfinite(logged["train/loss"]) and torch.isfinite(logged["val/loss"])

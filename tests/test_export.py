"""specmae-weights export: a pretraining checkpoint of ours → a save_pretrained folder with a model card."""

import pytest
import torch
import yaml

from terratorch_specmae.cli import main as weights_cli
from terratorch_specmae.models import SpectralMAE, SpectralViT
from terratorch_specmae.models.ssmae import SSMAEEncoder
from terratorch_specmae.tasks import SpectralMAETask

MEANS = [76.2, 64.9, 63.2, 67.2, 91.3, 63.8]
STDS = [13.6, 15.3, 22.6, 17.9, 32.1, 31.0]


def write_run(root, model_args, means=MEANS):
    """A run as LightningCLI leaves it: <root>/config.yaml and <root>/checkpoints/last.ckpt."""
    task = SpectralMAETask(model_args=model_args)
    with torch.no_grad():
        for p in task.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    (root / "checkpoints").mkdir(parents=True)
    ckpt = root / "checkpoints" / "last.ckpt"
    hparams = {**dict(task.hparams), "model_args": dict(model_args)}
    torch.save({"state_dict": task.state_dict(), "epoch": 4, "global_step": 40, "hyper_parameters": hparams}, ckpt)
    config = {"data": {"class_path": "terratorch.datamodules.GenericMultiModalDataModule", "init_args": {
        "train_data_root": {"landsat7": "chips/train"}, "means": {"landsat7": means}, "stds": {"landsat7": STDS}}}}  # fmt: skip
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return ckpt, task.model


MAE_ARGS = {"model": "s2mae_vit_tiny_mae", "bands": "landsat7", "img_size": 32, "decoder_embed_dim": 32,
            "decoder_depth": 1, "decoder_num_heads": 2}  # fmt: skip


def test_export_writes_the_mae_and_its_encoder(tmp_path, capsys):
    ckpt, model = write_run(tmp_path / "run", MAE_ARGS)
    weights_cli(["export", str(ckpt), str(tmp_path / "mae"), "--license", "apache-2.0"])
    weights_cli(["export", str(ckpt), str(tmp_path / "encoder"), "--encoder-only"])
    assert "SpectralViT (6 bands) written to" in capsys.readouterr().out
    mae = SpectralMAE.from_pretrained(tmp_path / "mae")
    encoder = SpectralViT.from_pretrained(tmp_path / "encoder")
    for key, value in model.state_dict().items():
        assert torch.equal(mae.state_dict()[key], value), key
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], value), key
    assert mae.pretrained_cfg.mean == MEANS and mae.pretrained_cfg.std == STDS
    assert mae.pretrained_cfg.pretraining_data == "GenericMultiModalDataModule over chips/train"
    assert "(epoch 4, step 40)" in mae.pretrained_cfg.source and mae.pretrained_cfg.license == "apache-2.0"
    assert encoder.pretrained_cfg.masking == "cube_random" and encoder.pretrained_cfg.mask_ratio == 0.9
    card = (tmp_path / "encoder" / "README.md").read_text()
    assert "| NIR_BROAD | 842 | 67.2 | 17.9 |" in card and "cube_random, ratio 0.9" in card


def test_export_of_an_ssmae_run_and_bad_inputs(tmp_path, capsys):
    args = {"model": "ssmae_base_mae", "bands": "landsat7", "embed_dim": 32, "num_heads": 4, "decoder_embed_dim": 32}
    ckpt, model = write_run(tmp_path / "ssmae", args)
    weights_cli(["export", str(ckpt), str(tmp_path / "out"), "--encoder-only"])
    encoder = SSMAEEncoder.from_pretrained(tmp_path / "out")
    assert torch.equal(encoder.spectral.blocks[1].attn.qkv.weight, model.spectral.encoder.blocks[1].attn.qkv.weight)
    assert "spatial random (0.3), spectral random (0.3)" in (tmp_path / "out" / "README.md").read_text()

    bad, _ = write_run(tmp_path / "bad", MAE_ARGS, means=MEANS[:4])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # a user error: exit status 2, one line on stderr
        weights_cli(["export", str(bad), str(tmp_path / "bad_out")])
    assert exit_.value.code == 2 and "The run's means have 4 values for the model's 6 bands" in capsys.readouterr().err
    finetune = tmp_path / "finetune.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"model_factory": "EncoderDecoderFactory", "model_args": {"backbone": "s2mae_vit_tiny"}}}, finetune)
    with pytest.raises(SystemExit) as exit_:
        weights_cli(["export", str(finetune), str(tmp_path / "x")])
    assert exit_.value.code == 2 and "is not a pretraining checkpoint of ours" in capsys.readouterr().err


def test_export_of_a_run_continued_from_catalogue_weights_carries_their_source_licence_and_citation(
    tmp_path, catalogue_restored
):
    """A pretraining run that began at catalogue weights (model: <variant>.<tag>, pretrained: true): export
    rebuilds the architecture without downloading anything, and the card says where the weights began."""
    from terratorch_specmae.weights import PretrainedCfg, register_pretrained_cfg

    register_pretrained_cfg("s2mae_vit_tiny_mae", PretrainedCfg(
        hf_hub_id="nobody/unreachable", source="Demo weights (a test)", license="cc-by-4.0",
        terms="attribution required", citation="Doe, J.: Demo weights. 2026"), tag="demo")  # fmt: skip
    ckpt, model = write_run(tmp_path / "run", MAE_ARGS)
    raw = torch.load(ckpt, weights_only=True)
    raw["hyper_parameters"]["model_args"] = {**MAE_ARGS, "model": "s2mae_vit_tiny_mae.demo", "pretrained": True}
    torch.save(raw, ckpt)
    weights_cli(["export", str(ckpt), str(tmp_path / "out"), "--encoder-only"])
    encoder = SpectralViT.from_pretrained(tmp_path / "out")
    assert torch.equal(encoder.tokenizer.proj.weight, model.encoder.tokenizer.proj.weight)
    cfg = encoder.pretrained_cfg
    assert "continued from s2mae_vit_tiny_mae.demo: Demo weights (a test)" in cfg.source
    assert (cfg.license, cfg.terms, cfg.citation) == ("cc-by-4.0", "attribution required", "Doe, J.: Demo weights. 2026")
    card = (tmp_path / "out" / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "Cite: Doe, J.: Demo weights. 2026" in card and "attribution required" in card


def test_export_of_an_untagged_run_from_catalogue_weights_rebuilds_their_architecture(tmp_path, catalogue_restored):
    """model: <variant> (no tag) with pretrained: true trained the default entry's architecture (here a learnable
    decoder position table); export, which downloads nothing, must rebuild that and not the variant's default."""
    from terratorch_specmae.weights import PretrainedCfg, register_pretrained_cfg

    register_pretrained_cfg("s2mae_vit_tiny_mae", PretrainedCfg(hf_hub_id="nobody/unreachable",
                            model_args={"decoder_pos_embed": "learnable"}), tag="demo")  # fmt: skip
    ckpt, model = write_run(tmp_path / "run", {**MAE_ARGS, "model": "s2mae_vit_tiny_mae.demo", "pretrained": False})
    assert model.decoder.pos_embed.kind == "learnable"
    raw = torch.load(ckpt, weights_only=True)
    raw["hyper_parameters"]["model_args"] = {**MAE_ARGS, "pretrained": True}  # untagged: the default entry
    torch.save(raw, ckpt)
    weights_cli(["export", str(ckpt), str(tmp_path / "out")])
    exported = SpectralMAE.from_pretrained(tmp_path / "out")
    assert exported.decoder.pos_embed.kind == "learnable"
    for key, value in model.state_dict().items():
        assert torch.equal(exported.state_dict()[key], value), key


def test_a_symlinked_checkpoint_takes_its_own_runs_statistics_not_those_beside_the_link(tmp_path):
    ckpt, _ = write_run(tmp_path / "run", MAE_ARGS)
    decoy = tmp_path / "shortcuts"
    (decoy / "checkpoints").mkdir(parents=True)
    (decoy / "config.yaml").write_text(yaml.safe_dump({"data": {"init_args": {"means": [0.0] * 6, "stds": [1.0] * 6}}}))
    link = decoy / "checkpoints" / "best.ckpt"
    link.symlink_to(ckpt)
    weights_cli(["export", str(link), str(tmp_path / "out")])
    exported = SpectralMAE.from_pretrained(tmp_path / "out")
    assert exported.pretrained_cfg.mean == MEANS and exported.pretrained_cfg.std == STDS

"""configs/benchmarks/hsi end to end on fake files in the datasets' real layouts (tests/data/hsi):
MRS and random-spectral-masking pretraining, then pixel classification from the pretrained
encoder, tested on the standard split with OA, AA, κ and per-class accuracy."""

import pytest
import torch
from cli_runner import only, run_cli
from data.hsi.data import make_houston2013, make_ouc

pytestmark = pytest.mark.slow

QUICK = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
         "--data.init_args.num_workers=0", "--data.init_args.batch_size=8"]  # fmt: skip


def data_args(paths: dict, layout: str, labelled: bool) -> list[str]:
    args = [f"--data.init_args.hsi_path={paths['hsi']}"]
    if layout == "ouc":
        args.append(f"--data.init_args.aux_paths=[{paths['aux']}]")
        if labelled:
            args += [f"--data.init_args.labels_path={paths['gt']}", f"--data.init_args.split_path={paths['index']}"]
    else:
        args.append(f"--data.init_args.aux_paths=[{paths['lidar']}]")
        if labelled:
            args += [f"--data.init_args.labels_path={paths['train']}", f"--data.init_args.test_labels_path={paths['test']}"]
    return args


@pytest.mark.parametrize("name", ["berlin", "houston2018", "augsburg", "houston2013"])
def test_pretrain_then_classify_on_the_standard_split(name, tmp_path):
    layout = "mmr" if name == "houston2013" else "ouc"
    paths = make_houston2013(tmp_path / "data") if layout == "mmr" else make_ouc(tmp_path / "data", name)
    config = f"configs/benchmarks/hsi/{name}"
    maskings = ["redundant_spectra", "random"] if name in ("berlin", "houston2018") else ["redundant_spectra"]
    checkpoints = {}
    for masking in maskings:  # MRS and the one-for-one swap back to SS-MAE's random spectral masking
        out = tmp_path / f"pretrain_{masking}"
        cli = run_cli("fit", "-c", f"{config}_pretrain.yaml", *QUICK, *data_args(paths, layout, labelled=False),
                      f"--model.init_args.model_args.spectral_masking={masking}",
                      f"--trainer.default_root_dir={out}")  # fmt: skip
        assert cli.trainer.global_step == 2
        spectral = cli.model.model.spectral.masking
        assert type(spectral).__name__ == {"random": "RandomMasking", "redundant_spectra": "RedundantSpectraMasking"}[masking]
        checkpoints[masking] = only(out.rglob("last.ckpt"))
    pretrained = torch.load(checkpoints["redundant_spectra"], map_location="cpu", weights_only=True)["state_dict"]
    out = tmp_path / "classify"
    cli = run_cli("fit", "-c", f"{config}_classify.yaml", *QUICK, *data_args(paths, layout, labelled=True),
                  f"--model.init_args.model_args.backbone_ckpt_path={checkpoints['redundant_spectra']}",
                  f"--trainer.default_root_dir={out}")  # fmt: skip
    assert cli.trainer.global_step == 2
    tuned = cli.model.model.encoder.state_dict()
    for key in ("spatial.tokenizer.proj.weight", "spectral.blocks.0.attn.qkv.weight"):
        branch, rest = key.split(".", 1)
        source = pretrained[f"model.{branch}.encoder.{rest}"]
        change = (tuned[key] - source).abs().max()
        assert 0 < change < 1e-3, (key, change)  # loaded from pretraining, then two steps at lr 1e-4
    test = run_cli("test", "-c", f"{config}_classify.yaml", *data_args(paths, layout, labelled=True),
                   "--data.init_args.num_workers=0", "--data.init_args.batch_size=8", f"--ckpt_path={only(out.rglob('last.ckpt'))}",
                   f"--trainer.default_root_dir={tmp_path / 'test'}")  # fmt: skip
    metrics = test.trainer.callback_metrics
    for key in ("test/Accuracy_Micro", "test/Accuracy", "test/Kappa"):  # OA, AA, κ
        assert 0.0 <= float(metrics[key]) <= 1.0 or key == "test/Kappa"
    class_names = cli.model.hparams["class_names"]
    assert len(class_names) == cli.model.hparams["model_args"]["num_classes"]
    assert f"test/Class_Accuracy_{class_names[0]}" in metrics
    assert test.datamodule.datasets["test"].labels.max() < len(class_names)


def test_spectralgpt_weights_fine_tune_on_hyperspectral_pixels(tmp_path):
    """configs/benchmarks/hsi/houston2013_spectralgpt.yaml: a SpectralGPT file (original key names, a small
    one) fitted by wavelength to the 144 CASI bands, fine-tuned on fake Houston 2013 pixels (15 × 15
    patches padded to 16 × 16 by TerraTorch)."""
    from test_spectralgpt import spectralgpt_state, write_checkpoint

    paths = make_houston2013(tmp_path / "data")
    state = spectralgpt_state(width=192, depth=2, decoder_width=64, decoder_depth=1, side=2, groups=4)
    checkpoint = write_checkpoint(tmp_path / "SpectralGPT+.pth", state)
    cli = run_cli("fit", "-c", "configs/benchmarks/hsi/houston2013_spectralgpt.yaml", *QUICK,
                  f"--data.init_args.hsi_path={paths['hsi']}", f"--data.init_args.labels_path={paths['train']}",
                  f"--data.init_args.test_labels_path={paths['test']}", "--trainer.precision=32",
                  "--model.init_args.model_args.backbone=s2mae_vit_tiny", "--model.init_args.model_args.backbone_depth=2",
                  f"--model.init_args.model_args.backbone_ckpt_path={checkpoint}",
                  f"--trainer.default_root_dir={tmp_path / 'out'}")  # fmt: skip
    assert cli.trainer.global_step == 2
    encoder = cli.model.model.encoder
    assert encoder.load_report.layout == "spectralgpt" and len(encoder.bands) == 144
    assert encoder.bands[0] == "364.0nm" and encoder.pos_embed.spectral.shape == (1, 48, 192)
    change = (encoder.tokenizer.proj.weight.detach() - state["patch_embed.proj.weight"]).abs().max()
    assert 0 < change < 1e-3  # SpectralGPT's kernel, two steps at lr 1e-4 later

"""MAE's training recipe: decoder initialisation, parameter groups without weight decay, the
learning-rate schedule and batch scaling, statistics from the datamodule, the logged baseline."""

import math
from itertools import pairwise

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from terratorch_specmae.backbones import build_mae
from terratorch_specmae.indices import SpectralIndices, denormalize
from terratorch_specmae.models import SSMAE
from terratorch_specmae.tasks import SpectralMAETask
from terratorch_specmae.tasks.optim import no_weight_decay, param_groups, scaled_lr, warmup_cosine_factor

LANDSAT = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]
MODEL_ARGS = {"model": "s2mae_vit_tiny_mae", "bands": LANDSAT, "img_size": 32, "decoder_embed_dim": 64,
              "decoder_depth": 2, "decoder_num_heads": 2}


def _check_mae_init(decoder: nn.Module) -> None:
    linears = [m for m in decoder.modules() if isinstance(m, nn.Linear)]
    assert len(linears) >= 2 + 4 * len(decoder.blocks)  # embed, pred, and qkv/proj/fc1/fc2 per block
    for layer in linears:
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))  # xavier-uniform's bound
        assert layer.weight.abs().max() <= bound + 1e-6
        assert layer.weight.detach().std().item() == pytest.approx(bound / math.sqrt(3.0), rel=0.15)  # uniform(-b, b) has sd b/√3
        assert torch.count_nonzero(layer.bias) == 0
    norms = [m for m in decoder.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(torch.all(n.weight == 1) and torch.all(n.bias == 0) for n in norms)
    assert decoder.mask_token.detach().std().item() == pytest.approx(0.02, rel=0.3)


def test_decoder_is_initialised_as_mae():
    mae = build_mae("tiny", bands=LANDSAT, img_size=32, decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4)
    _check_mae_init(mae.decoder)


def test_ssmae_decoders_are_initialised_as_mae():
    model = SSMAE(bands=[f"{450 + 20 * i}nm" for i in range(10)], window_size=7, embed_dim=64, depth=1, num_heads=2,
                  decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=2)
    _check_mae_init(model.spatial.decoder)
    _check_mae_init(model.spectral.decoder)


def test_parameter_groups_leave_biases_norms_positions_and_mask_token_undecayed():
    mae = build_mae("tiny", bands=LANDSAT, img_size=32, decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=2,
                    decoder_pos_embed="learnable")
    decay, no_decay = param_groups(mae.named_parameters(), 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    undecayed = set(no_decay["names"])
    for name, param in mae.named_parameters():
        expected = name.endswith(".bias") or param.ndim == 1 or "pos_embed" in name or "mask_token" in name
        assert (name in undecayed) == expected, name
    assert {"encoder.pos_embed.spatial", "encoder.pos_embed.spectral", "decoder.mask_token",
            "decoder.pos_embed.spatial", "encoder.norm.weight", "encoder.blocks.0.attn.qkv.bias"} <= undecayed
    assert {"encoder.tokenizer.proj.weight", "encoder.blocks.0.attn.qkv.weight", "decoder.pred.weight"} <= set(
        decay["names"]
    )
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(mae.parameters()))
    assert no_weight_decay("decoder.mask_token", nn.Parameter(torch.zeros(1, 1, 8)))


def test_frozen_parameters_stay_out_of_the_optimizer():
    mae = build_mae("tiny", bands=LANDSAT, img_size=32, decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=2)
    for p in mae.encoder.parameters():
        p.requires_grad_(False)
    names = [n for g in param_groups(mae.named_parameters(), 0.05) for n in g["names"]]
    assert names and all(n.startswith("decoder.") for n in names)


def test_schedule_factor():
    # 100 steps, 10 of warmup, floor 0.1
    assert warmup_cosine_factor(0, 100, 10, 0.1) == 0.0
    assert warmup_cosine_factor(5, 100, 10, 0.1) == pytest.approx(0.5)
    assert warmup_cosine_factor(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine_factor(55, 100, 10, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert warmup_cosine_factor(100, 100, 10, 0.1) == pytest.approx(0.1)
    assert warmup_cosine_factor(0, 100, 0) == 1.0  # no warmup
    assert scaled_lr(1.5e-4, 4096) == pytest.approx(2.4e-3)  # MAE's ViT recipe


class _Images(torch.utils.data.Dataset):
    def __len__(self):
        return 40

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"image": torch.rand(6, 32, 32, generator=g) * 200 + 1}


class _DataModule(pl.LightningDataModule):
    def __init__(self, batch_size=4, means=None, stds=None):
        super().__init__()
        self.batch_size, self.means, self.stds = batch_size, means, stds

    def train_dataloader(self):
        return DataLoader(_Images(), batch_size=self.batch_size)


class _LrRecorder(pl.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])


def _fit(tmp_path, datamodule=None, max_epochs=2, accumulate=1, **task_args):
    pl.seed_everything(0)
    task = SpectralMAETask(model_args=MODEL_ARGS, **task_args)
    recorder = _LrRecorder()
    trainer = pl.Trainer(max_epochs=max_epochs, accumulate_grad_batches=accumulate, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[recorder], default_root_dir=tmp_path)
    trainer.fit(task, datamodule=datamodule or _DataModule())
    return task, trainer, recorder.lrs


def test_default_schedule_is_warmup_then_cosine(tmp_path):
    """20 optimizer steps (2 epochs × 10 batches) with a warmup of 25 % = 5 steps: lr 0 at step 0,
    the peak at the end of warmup, falling to the floor (0.1 × lr) at the end."""
    _, trainer, lrs = _fit(tmp_path, lr=1e-3, warmup_fraction=0.25, min_lr_ratio=0.1)
    assert trainer.global_step == 20 and len(lrs) == 20
    lrs = [group[0] for group in lrs]
    assert lrs[0] == 0.0
    assert lrs[5] == pytest.approx(1e-3)  # end of warmup: the peak
    assert lrs[2] == pytest.approx(1e-3 * 2 / 5)
    assert all(a < b for a, b in pairwise(lrs[:6]))  # rising
    assert all(a > b for a, b in pairwise(lrs[5:]))  # then falling
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-4)  # after the last step: the floor
    assert trainer.logged_metrics["train/lr"] == pytest.approx(lrs[-1])


def test_warmup_in_epochs_and_the_default_fraction(tmp_path):
    _, _, lrs = _fit(tmp_path, lr=1e-3, warmup_epochs=1)  # 10 steps per epoch
    assert lrs[10][0] == pytest.approx(1e-3) and lrs[5][0] == pytest.approx(5e-4)
    _, _, lrs = _fit(tmp_path, lr=1e-3)  # default: 5 % of 20 steps = 1 step
    assert lrs[0][0] == 0.0 and lrs[1][0] == pytest.approx(1e-3)


def test_base_lr_scales_with_the_global_batch(tmp_path):
    _, _, lrs = _fit(tmp_path, datamodule=_DataModule(batch_size=8), base_lr=1.6e-3, lr_schedule="constant",
                     accumulate=2, max_epochs=1)
    assert lrs[0][0] == pytest.approx(1.6e-3 * 16 / 256)  # batch 8 × accumulation 2
    with pytest.raises(ValueError, match="not both"):
        SpectralMAETask(model_args=MODEL_ARGS, lr=1e-3, base_lr=1e-4)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        SpectralMAETask(model_args=MODEL_ARGS, lr_schedule="step")


def test_baseline_is_logged_beside_the_loss(tmp_path):
    _, trainer, _ = _fit(tmp_path, max_epochs=1, lr=1e-3)
    logged = trainer.logged_metrics
    assert {"train/loss", "train/baseline_loss_step", "train/baseline_ratio_step", "train/baseline_loss_epoch"} <= set(
        logged
    )
    assert logged["train/baseline_loss_step"] > 0
    assert logged["train/baseline_ratio_step"] == pytest.approx(
        float(logged["train/baseline_loss_step"] / logged["train/loss"]), rel=1e-5
    )


def test_saliency_masking_takes_the_statistics_from_the_datamodule(tmp_path):
    means, stds = [50.0, 60.0, 70.0, 80.0, 90.0, 100.0], [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    args = {**MODEL_ARGS, "masking": "saliency", "mask_ratio": 0.75}
    pl.seed_everything(0)
    task = SpectralMAETask(model_args=args, lr=1e-3)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(task, datamodule=_DataModule(means=means, stds=stds))
    assert task.model.masking.means == means and task.model.masking.stds == stds
    # statistics written in the masking options win over the datamodule's
    task = SpectralMAETask(model_args={**args, "masking_options": {"means": [0.0] * 6, "stds": [1.0] * 6}}, lr=1e-3)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(task, datamodule=_DataModule(means=means, stds=stds))
    assert task.model.masking.means == [0.0] * 6


def test_terratorch_generic_datamodule_statistics_are_found():
    from terratorch.datamodules.utils import Normalize

    from terratorch_specmae.tasks.pretrain import normalization_statistics

    class Generic:  # what GenericMultiModalDataModule(concat_bands=True) builds from its means/stds
        aug = Normalize([1.0, 2.0], [3.0, 4.0])

    assert normalization_statistics(Generic()) == ([1.0, 2.0], [3.0, 4.0])
    assert normalization_statistics(object()) is None


def test_indices_of_bf16_batches_match_fp32():
    """Index maps are computed on reflectance in float32, whatever the batch's dtype."""
    means, stds = [800.0, 900.0, 1000.0, 2500.0, 1800.0, 1200.0], [300.0, 300.0, 400.0, 600.0, 500.0, 400.0]
    raw = torch.rand(2, 6, 16, 16) * 4000 + 200
    standardised = (raw - torch.tensor(means)[:, None, None]) / torch.tensor(stds)[:, None, None]
    indices = SpectralIndices(["NDVI", "NDWI", "NDBI"], LANDSAT)
    fp32 = indices(denormalize(standardised, means, stds))
    bf16_batch = standardised.bfloat16()
    bf16 = indices(denormalize(bf16_batch, means, stds))
    reference = indices(denormalize(bf16_batch.float(), means, stds))  # the same rounded input, in fp32
    torch.testing.assert_close(bf16, reference, atol=1e-3, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = indices(denormalize(bf16_batch, means, stds))
    torch.testing.assert_close(autocast, reference, atol=1e-3, rtol=0)
    assert (fp32 - bf16).abs().max() < 0.05  # only the input's own bf16 rounding remains

import matplotlib.colors
import pytest
import torch

from terratorch_specmae.plotting import class_colormap, reconstruction_figure, segmentation_figure
from terratorch_specmae.tasks import SpectralMAETask

MODEL_ARGS = {"model": "s2mae_vit_tiny_mae", "bands": "landsat7", "img_size": 32, "decoder_embed_dim": 32,
              "decoder_depth": 1, "decoder_num_heads": 2}


def test_optimizer_defaults_are_the_mae_recipe():
    task = SpectralMAETask(model_args=MODEL_ARGS, lr_schedule="constant")
    optimizer = task.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW)
    decay, no_decay = optimizer.param_groups
    assert decay["lr"] == no_decay["lr"] == 1.5e-4 and tuple(decay["betas"]) == (0.9, 0.95)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert task.hparams["optimizer_hparams"]["weight_decay"] == 0.05  # recorded, so checkpoints reload it
    assert task.hparams["lr_schedule"] == "constant"


def test_metrics_see_only_masked_pixels_per_band():
    task = SpectralMAETask(model_args=MODEL_ARGS)
    x = torch.randn(2, 6, 32, 32)
    out = task(x)
    target = task.mask_input(x, out.mask)
    assert torch.equal(torch.isnan(target), out.mask == 0)  # visible pixels are skipped
    torch.testing.assert_close(target[out.mask > 0], x[out.mask > 0])
    # the metric equals the MSE over masked pixels computed by hand
    task.val_metrics.update(out.pred, target)
    mse = task.val_metrics.compute()["val/MSE"]
    expected = ((out.pred - x) ** 2)[out.mask > 0].mean()
    torch.testing.assert_close(mse, expected, rtol=1e-5, atol=1e-6)
    # a [B, H, W] mask applies to every band
    pixel_mask = torch.zeros(2, 32, 32)
    pixel_mask[:, :8] = 1
    assert torch.isnan(task.mask_input(x, pixel_mask)[:, :, 8:]).all()


def test_predict_step_returns_reconstructions():
    task = SpectralMAETask(model_args=MODEL_ARGS)
    pred, names = task.predict_step({"image": torch.randn(2, 6, 32, 32), "filename": ["a", "b"]}, 0)
    assert pred.shape == (2, 6, 32, 32) and names == ["a", "b"]


def test_figures_and_class_colours():
    image = torch.rand(2, 6, 16, 16)
    fig = reconstruction_figure(image, image, (image > 0.5).float(), [0, 3], ["BLUE"] * 6)
    assert len(fig.axes) == 2 * 6
    fig = segmentation_figure(image, torch.zeros(2, 16, 16), torch.ones(2, 16, 16), [2, 1, 0], 3, ["a", "b", "c"])
    assert len(fig.axes) == 2 * 3
    cmap = class_colormap(3, ["#1f5fbf", "#2e9d3a", "#c9a66b"])
    assert matplotlib.colors.to_hex(cmap(1)) == "#2e9d3a"
    with pytest.raises(ValueError, match="Got 2 class colours for 3 classes"):
        class_colormap(3, ["red", "blue"])


def test_a_datamodule_normalising_a_band_by_a_std_of_0_is_refused_at_setup():
    """(x − mean) / 0 would make the band NaN/inf in every pixel; the task names the band and its statistics."""
    import lightning.pytorch as pl

    class Stats(pl.LightningDataModule):
        means = [400.0, 500.0, 600.0, 2000.0, 1500.0, 900.0]
        stds = [100.0, 100.0, 100.0, 0.0, 300.0, 200.0]

    task = SpectralMAETask(model_args=MODEL_ARGS)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer._data_connector.attach_datamodule(task, Stats())
    task.trainer = trainer
    with pytest.raises(ValueError, match=r"Stats's normalisation has a standard deviation that is not positive for "
                                         r"band\(s\) NIR_BROAD \(mean 2000, std 0\); expected a positive std per band"):
        task.setup("fit")
    Stats.stds[3] = 250.0
    task.setup("fit")

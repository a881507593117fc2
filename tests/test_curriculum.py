"""Saliency-guided curriculum masking (SIGMAE SSDTM): γ, selection, and progress from the trainer."""

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from terratorch_specmae.masking import Curriculum, build_masking, num_visible
from terratorch_specmae.models import CubeTokenizer
from terratorch_specmae.tasks import SpectralMAETask

LANDSAT = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]


def test_curriculum_schedules():
    linear = Curriculum("linear", start=0.2, end=0.6, gamma_max=0.8)
    assert [linear(p) for p in (0.0, 0.2, 0.4, 0.6, 1.0)] == pytest.approx([0.0, 0.0, 0.4, 0.8, 0.8])
    cosine = Curriculum("cosine")
    values = [cosine(p / 20) for p in range(21)]
    assert values[0] == 0 and values[-1] == pytest.approx(1.0) and values[10] == pytest.approx(0.5)
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))
    assert Curriculum("constant", gamma_max=0.3)(0.0) == 0.3
    for bad in ({"schedule": "step"}, {"start": 0.7, "end": 0.5}, {"gamma_max": 1.5}):
        with pytest.raises(ValueError):
            Curriculum(**bad)


def strategy(**kwargs):
    defaults = {"mask_ratio": 0.75, "selection": "topk", "noise": 0.0, "schedule": "constant"}
    return build_masking("saliency", bands=LANDSAT, **{**defaults, **kwargs})


@pytest.mark.parametrize("order", ["hard_first", "easy_first"])
def test_gamma_one_masks_the_most_salient_tokens(order):
    grid = CubeTokenizer(6, 8, patch_size=8, spectral_patch_size=3).grid(64, 64)
    image = torch.rand(4, 6, 64, 64) * 200 + 1
    masking = strategy(gamma_max=1.0, order=order)
    m = masking(grid, 4, torch.device("cpu"), image=image)
    saliency = masking.saliency(image, 8).repeat(1, grid.groups)
    if order == "easy_first":
        saliency = -saliency
    budget = grid.num_tokens - num_visible(grid.num_tokens, 0.75)
    threshold = saliency.topk(budget, dim=1).values[:, -1:]
    assert torch.all(m.mask[saliency > threshold] == 1)  # every token above the budget's cut is masked
    assert torch.all(m.mask[saliency < threshold] == 0)
    assert torch.equal(m.mask.sum(dim=1), torch.full((4,), float(budget)))


def test_gamma_zero_is_uniform():
    grid = CubeTokenizer(6, 8, patch_size=8, spectral_patch_size=3).grid(64, 64)
    image = torch.rand(1, 6, 64, 64).expand(3000, -1, -1, -1) * 200 + 1  # one image, many draws
    masking = strategy(gamma_max=0.0)
    m = masking(grid, 3000, torch.device("cpu"), image=image, generator=torch.Generator().manual_seed(0))
    freq = m.mask.mean(dim=0)
    assert (freq - 0.75).abs().max() < 0.04  # binomial sd ≈ 0.008
    saliency = masking.saliency(image[:1], 8).repeat(1, grid.groups)[0]
    assert abs(torch.corrcoef(torch.stack([freq, saliency]))[0, 1]) < 0.3


@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.7, 1.0])
def test_visible_count_is_exact_for_every_gamma(gamma):
    grid = CubeTokenizer(6, 8, patch_size=8, spectral_patch_size=3).grid(40, 56)  # edge cells too
    m = strategy(mask_ratio=0.9, gamma_max=gamma, noise=0.01)(grid, 5, torch.device("cpu"), image=torch.rand(5, 6, 40, 56))
    assert m.ids_keep.shape == (5, num_visible(grid.num_tokens, 0.9))
    assert torch.equal(torch.gather(m.mask, 1, m.ids_keep), torch.zeros_like(m.ids_keep, dtype=torch.float32))


def test_saliency_masking_needs_its_bands_and_image():
    with pytest.raises(ValueError, match="NDBI needs bands"):
        build_masking("saliency", bands=["B02", "B03", "B04", "B08"])
    with pytest.warns(UserWarning, match="NDBI needs bands"):
        four_band = build_masking("saliency", bands=["B02", "B03", "B04", "B08"], missing_bands="skip")
    assert four_band.indices.names == ["NDVI", "NDWI"]
    with pytest.raises(ValueError, match="needs the band names"):
        build_masking("saliency")
    with pytest.raises(ValueError, match="needs the image batch"):
        strategy()(CubeTokenizer(6, 8).grid(32, 32), 1, torch.device("cpu"))
    with pytest.raises(ValueError, match="Give both means and stds"):
        strategy(means=[0.0] * 6)


class _Images(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"image": torch.rand(6, 32, 32, generator=g) * 200 + 1}


class _Recorder:
    """Wraps a strategy and records (progress, masked count, kept-index checksum) per call."""

    uses_progress = True

    def __init__(self, strategy, seen):
        self.strategy, self.seen = strategy, seen

    def __call__(self, *args, **kwargs):
        out = self.strategy(*args, **kwargs)
        self.seen.append((kwargs["progress"], out.mask.sum().item(), out.ids_keep.sum().item()))
        return out


def _fit(tmp_path, max_steps=8, stop_at=None, ckpt_path=None, seed=0):
    pl.seed_everything(seed)
    task = SpectralMAETask(model_args={
        "model": "s2mae_vit_tiny_mae", "bands": LANDSAT, "img_size": 32, "decoder_embed_dim": 32,
        "decoder_depth": 1, "decoder_num_heads": 2, "masking": "saliency", "mask_ratio": 0.75,
        "masking_options": {"schedule": "linear", "gamma_max": 1.0},
    })
    seen = []
    task.model.masking = _Recorder(task.model.masking, seen)

    class Stop(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if stop_at is not None and trainer.global_step >= stop_at:
                trainer.should_stop = True

    trainer = pl.Trainer(max_steps=max_steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[Stop()], default_root_dir=tmp_path)
    trainer.fit(task, train_dataloaders=DataLoader(_Images(), batch_size=4), ckpt_path=ckpt_path)
    return trainer, seen


def test_progress_drives_gamma_and_survives_resume(tmp_path):
    trainer, first = _fit(tmp_path, stop_at=4)
    assert [p for p, *_ in first] == pytest.approx([0.0, 0.125, 0.25, 0.375])
    ckpt = tmp_path / "half.ckpt"
    trainer.save_checkpoint(ckpt)
    _, resumed = _fit(tmp_path, ckpt_path=str(ckpt))
    assert [p for p, *_ in resumed] == pytest.approx([0.5, 0.625, 0.75, 0.875])
    _, again = _fit(tmp_path, stop_at=4)
    assert again == first  # same seed: same progress and same masks


def _olinda_chips(n: int = 8) -> torch.Tensor:
    import glob

    import numpy as np
    import rasterio

    files = sorted(glob.glob("examples/data/olinda_l7/val/images/*.tif"))[:n]
    return torch.tensor(np.stack([rasterio.open(f).read() for f in files])).float()


@pytest.mark.parametrize("spectral_patch_size", [3, 6])  # cube tokens and 2D patches
def test_gumbel_selection_keeps_every_step_random_at_gamma_one(spectral_patch_size):
    """At the end of the curriculum (γ = 1) two masks of one image differ clearly (the old top-k
    selection gave the same mask every step), yet the hidden tokens stay the salient ones."""
    image = _olinda_chips()
    grid = CubeTokenizer(6, 8, patch_size=8, spectral_patch_size=spectral_patch_size).grid(64, 64)
    masking = build_masking("saliency", bands=LANDSAT, mask_ratio=0.9)  # defaults: gumbel, temperature 0.1
    assert masking.selection == "gumbel"
    first, second = (
        masking(grid, len(image), torch.device("cpu"), image=image, progress=1.0, generator=torch.Generator().manual_seed(s))
        for s in (0, 1)
    )
    visible_a, visible_b = first.mask == 0, second.mask == 0
    overlap = ((visible_a & visible_b).sum(1) / (visible_a | visible_b).sum(1)).mean()
    assert overlap < 0.5  # measured 0.21 (cube) / 0.24 (2D); top-k gives 0.87
    saliency = masking.saliency(image, 8).repeat(1, grid.groups)
    hidden = (saliency * first.mask).sum() / first.mask.sum()
    visible = (saliency * (1 - first.mask)).sum() / (1 - first.mask).sum()
    assert hidden > visible + 0.1  # measured 0.42 vs 0.24; uniform masking gives equal means
    topk = build_masking("saliency", bands=LANDSAT, mask_ratio=0.9, selection="topk")
    a, b = (topk(grid, len(image), torch.device("cpu"), image=image, progress=1.0, generator=torch.Generator().manual_seed(s))
            for s in (0, 1))
    assert ((a.mask == 0) & (b.mask == 0)).sum() / (a.mask == 0).sum() > 0.8  # the frozen mask the default avoids


def test_saliency_selection_options_are_checked():
    with pytest.raises(ValueError, match="selection must be one of"):
        build_masking("saliency", bands=LANDSAT, selection="greedy")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        build_masking("saliency", bands=LANDSAT, temperature=0.0)
    with pytest.raises(ValueError, match="expected 6, one per band"):
        build_masking("saliency", bands=LANDSAT, means=[0.0] * 5, stds=[1.0] * 5)


def test_saliency_on_standardised_input_without_statistics_warns():
    image = torch.randn(2, 6, 32, 32)  # looks standardised: half the values negative
    masking = build_masking("saliency", bands=LANDSAT)
    grid = CubeTokenizer(6, 8, patch_size=8, spectral_patch_size=6).grid(32, 32)
    with pytest.warns(UserWarning, match="looks standardised"):
        masking(grid, 2, torch.device("cpu"), image=image)

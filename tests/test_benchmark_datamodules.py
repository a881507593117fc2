"""The papers' benchmark datamodules on tiny fake copies of EuroSAT, BigEarthNet and OSCD written in
TorchGeo's real on-disk layout by tests/data/<name>/data.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from data.bigearthnet.data import make_bigearthnet
from data.eurosat.data import make_eurosat
from data.oscd.data import make_oscd
from data.sentinel2 import band_from_value
from torchgeo.datamodules.eurosat import MEAN as EUROSAT_MEAN
from torchgeo.datamodules.eurosat import STD as EUROSAT_STD

from terratorch_specmae.datamodules import (
    BigEarthNetBenchmarkDataModule,
    EuroSATBenchmarkDataModule,
    OSCDBenchmarkDataModule,
)

S2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
SHUFFLED = ["B8A", "B02", "B12", "B04", "B01", "B11", "B08", "B03"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("benchmarks")
    for name, make in (("eurosat", make_eurosat), ("bigearthnet", make_bigearthnet), ("oscd", make_oscd)):
        make(root / name)
    return root


def run_hooks(dm, batch, stage: str):
    """What Lightning does to a loader batch, with a trainer in the given stage."""
    dm.trainer = SimpleNamespace(
        training=stage == "train", validating=stage == "val", sanity_checking=False, testing=stage == "test", predicting=False
    )
    return dm.on_after_batch_transfer(dm.on_before_batch_transfer(batch, 0), 0)


def channel_bands(image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> list[str]:
    """Decode which band each channel of a normalised ``[B, C, H, W]`` batch holds (fake data: one level per band)."""
    raw = image * std[None, :, None, None] + mean[None, :, None, None]
    return [band_from_value(float(raw[:, c].mean())) for c in range(image.shape[1])]


def test_eurosat_reads_bands_by_name_in_the_models_order_at_128_px(data):
    dm = EuroSATBenchmarkDataModule(root=str(data / "eurosat"), bands=S2, batch_size=4)
    dm.setup("fit")
    raw = next(iter(dm.train_dataloader()))
    # The files store B8A last; the batch has it 9th, as asked.
    assert [band_from_value(float(raw["image"][:, c].mean())) for c in range(12)] == S2
    out = run_hooks(dm, raw, "val")
    assert out["image"].shape == (4, 12, 128, 128) and out["label"].shape == (4,)
    # normalised with TorchGeo's EuroSAT statistics of the same band names
    mean = torch.tensor([EUROSAT_MEAN[b] for b in S2])
    std = torch.tensor([EUROSAT_STD[b] for b in S2])
    assert channel_bands(out["image"], mean, std) == S2
    expected = (raw["image"].mean(dim=(0, 2, 3)) - mean) / std
    torch.testing.assert_close(out["image"].mean(dim=(0, 2, 3)), expected, atol=2e-3, rtol=0)


def test_bigearthnet_reorders_bands_and_their_statistics_by_name(data):
    dm = BigEarthNetBenchmarkDataModule(root=str(data / "bigearthnet"), bands=SHUFFLED, num_classes=19, batch_size=2)
    dm.setup("fit")
    for stage in ("train", "val"):
        out = run_hooks(dm, next(iter(getattr(dm, f"{stage}_dataloader")())), stage)
        assert out["image"].shape == (2, len(SHUFFLED), 128, 128)
        assert out["label"].shape == (2, 19) and out["label"].sum(dim=1).min() >= 1
        assert channel_bands(out["image"], dm.mean, dm.std) == SHUFFLED


def test_oscd_tiles_whole_regions_and_hands_terratorch_channels_then_dates(data):
    dm = OSCDBenchmarkDataModule(root=str(data / "oscd"), bands=S2, img_size=64, val_split_pct=0.5, batch_size=2)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_dataset) == 2 and len(dm.val_dataset) == 2 and len(dm.test_dataset) == 4
    regions = next(iter(dm.test_dataloader()))
    region = regions[0]
    _, _, h, w = region["image"].shape  # [2 dates, 12 bands, H, W]
    out = run_hooks(dm, regions, "test")
    rows, cols = -(-h // 64), -(-w // 64)
    assert out["image"].shape == (rows * cols, 12, 2, 64, 64) and out["mask"].shape == (rows * cols, 64, 64)
    # stitching the tiles back gives the region: mask exactly, padding is ignore_index
    mask = out["mask"].reshape(rows, cols, 64, 64).permute(0, 2, 1, 3).reshape(rows * 64, cols * 64)
    assert torch.equal(mask[:h, :w], region["mask"][0])
    assert (mask[h:] == -1).all() and (mask[:, w:] == -1).all()
    image = out["image"].reshape(rows, cols, 12, 2, 64, 64).permute(2, 3, 0, 4, 1, 5).reshape(12, 2, rows * 64, cols * 64)
    mean, std = dm.mean[:, None, None], dm.std[:, None, None]
    for date in (0, 1):  # [C, T]: date t of band c is region["image"][t, c], normalised
        torch.testing.assert_close(image[:, date, :h, :w], (region["image"][date] - mean) / std)
    assert (image[:, :, h:] == 0).all()

    train = run_hooks(dm, next(iter(dm.train_dataloader())), "train")
    assert train["image"].shape == (2, 12, 2, 64, 64) and set(train["mask"].unique().tolist()) <= {0, 1}


def test_unknown_or_repeated_bands_say_what_the_dataset_has(data):
    with pytest.raises(ValueError, match=r"EuroSAT has bands \['B01'.*unknown: \['B13'\]"):
        EuroSATBenchmarkDataModule(root=str(data / "eurosat"), bands=["B02", "B13"])
    with pytest.raises(ValueError, match=r"BigEarthNet \(Sentinel-2\) has bands .*unknown: \['B10'\]"):
        BigEarthNetBenchmarkDataModule(root=str(data / "bigearthnet"), bands=["B10"])
    with pytest.raises(ValueError, match=r"OSCD bands must be unique, got duplicates \['B02'\] at positions \{'B02': \[0, 1\]\}"):
        OSCDBenchmarkDataModule(root=str(data / "oscd"), bands=["B02", "B02"])


def test_training_crops_pad_small_regions_with_ignore_index():
    from terratorch_specmae.datamodules.benchmarks import RandomPairCrop

    sample = {"image": torch.ones(2, 3, 40, 70), "mask": torch.zeros(1, 40, 70, dtype=torch.long)}
    out = RandomPairCrop(64, ignore_index=-1)(sample)
    assert out["image"].shape == (2, 3, 64, 64) and out["mask"].shape == (1, 64, 64)
    assert (out["mask"][:, 40:] == -1).all() and (out["mask"][:, :40] == 0).all()  # rows padded, columns cropped
    assert (out["image"][:, :, 40:] == 0).all() and (out["image"][:, :, :40] == 1).all()

"""Images-only pretraining corpora (SSL4EO-S12, BigEarthNet-S2, fMoW-Sentinel) on tiny fake copies written in the
datasets' real on-disk layout by tests/data/<name>/data.py: band order by name, the corpus's published
normalisation, crop size, seasons, held-out validation, and clear errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import rasterio
import torch
from data.bigearthnet.data import make_bigearthnet
from data.fmow_sentinel.data import FMOW_IMAGES, make_fmow_sentinel
from data.sentinel2 import band_from_value
from data.ssl4eo.data import SEASON_OFFSET, SSL4EO_SEASONS, make_ssl4eo

from terratorch_specmae.datamodules import (
    BigEarthNetPretrainDataModule,
    FMoWSentinelPretrainDataModule,
    SSL4EOS12PretrainDataModule,
)
from terratorch_specmae.datamodules.pretraining_corpora import CORPUS_STATISTICS, FMoWSentinel, SSL4EOS12Images

SHUFFLED = ["B8A", "B02", "B12", "B04", "B01", "B11", "B08", "B03"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpora")
    make_ssl4eo(root / "ssl4eo", locations=3)
    make_bigearthnet(root / "bigearthnet")
    make_fmow_sentinel(root / "fmow")
    return root


def after_transfer(dm, batch, training: bool) -> dict:
    dm.trainer = SimpleNamespace(training=training, validating=not training, sanity_checking=False, testing=False, predicting=False)
    return dm.on_after_batch_transfer(batch, 0)


def decoded(image: torch.Tensor) -> list[str]:
    """The band each channel of a raw ``[B, C, H, W]`` batch holds (fake data: one level per band)."""
    return [band_from_value(float(image[:, c].mean())) for c in range(image.shape[1])]


@pytest.mark.parametrize("split", ["s2c", "s2a"])
def test_ssl4eo_reads_bands_by_name_crops_and_normalises_with_the_published_statistics(data, split):
    bands = SHUFFLED + (["B10"] if split == "s2c" else [])
    dm = SSL4EOS12PretrainDataModule(root=str(data / "ssl4eo"), split=split, bands=bands, img_size=96, val_samples=1, batch_size=4)
    dm.setup("fit")
    raw = next(iter(dm.train_dataloader()))
    assert set(raw) == {"image"} and raw["image"].dtype == torch.float32
    assert raw["image"].shape == (4, len(bands), 96, 96)
    assert decoded(raw["image"]) == bands  # the files are B1.tif … B12.tif: read by name into this order
    stats = CORPUS_STATISTICS[f"ssl4eo_s12_{split}"]
    mean, std = torch.tensor([stats[b][0] for b in bands]), torch.tensor([stats[b][1] for b in bands])
    val = next(iter(dm.val_dataloader()))
    out = after_transfer(dm, {"image": val["image"].clone()}, training=False)
    torch.testing.assert_close(out["image"], (val["image"] - mean[:, None, None]) / std[:, None, None])
    if split == "s2c":  # the published L1C numbers, by name (B10: cirrus)
        assert stats["B04"] == (1363.52445545, 1138.84957046) and stats["B10"] == (22.10351321, 51.15431158)
    else:
        assert stats["B04"] == (1297.47289228, 1368.11351514) and "B10" not in stats


def test_ssl4eo_seasons_all_is_every_season_once_and_random_one_per_location(data):
    root = str(data / "ssl4eo")
    every = SSL4EOS12Images(root, "s2c", seasons="all", bands=["B02"])
    assert len(every) == 3 * len(SSL4EO_SEASONS)
    assert [(loc, season) for loc, season in every.samples][:4] == [(0, 0), (0, 1), (0, 2), (0, 3)]
    means = [float(every[i]["image"].mean()) for i in range(4)]  # one location's seasons: offsets 0, 10, 20, 30 (× gain)
    assert means == sorted(means) and means[-1] - means[0] > 5
    one = SSL4EOS12Images(root, "s2c", seasons="random", bands=["B02"])
    assert len(one) == 3
    torch.manual_seed(0)
    drawn = {round(float(one[0]["image"].mean()), 3) for _ in range(40)}
    assert drawn == {round(m, 3) for m in means}  # each visit one of the four seasons, all four over 40 visits
    assert len(SEASON_OFFSET) == 4


def test_ssl4eo_validation_holds_out_whole_locations(data):
    dm = SSL4EOS12PretrainDataModule(root=str(data / "ssl4eo"), split="s2a", img_size=64, val_samples=1, batch_size=2)
    dm.setup("fit")
    train_locations = {dm.train_dataset.dataset.samples[i][0] for i in dm.train_dataset.indices}
    val_locations = {dm.val_dataset.dataset.samples[i][0] for i in dm.val_dataset.indices}
    assert len(val_locations) == 1 and not train_locations & val_locations
    assert len(dm.train_dataset) == 2 * 4 and len(dm.val_dataset) == 4  # all seasons of the held-out location
    assert dm.band_names == ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


def test_bigearthnet_pretraining_batches_are_images_only_in_the_models_band_order(data):
    dm = BigEarthNetPretrainDataModule(root=str(data / "bigearthnet"), bands=SHUFFLED, img_size=128, val_samples=2, batch_size=2)
    dm.setup("fit")
    assert len(dm.train_dataset) == 4 and len(dm.val_dataset) == 2
    raw = next(iter(dm.train_dataloader()))
    assert set(raw) == {"image"} and raw["image"].shape == (2, len(SHUFFLED), 128, 128)  # 120 px patches → 128
    assert decoded(raw["image"]) == SHUFFLED
    out = after_transfer(dm, {"image": raw["image"].clone()}, training=True)
    stats = CORPUS_STATISTICS["bigearthnet_s2"]
    assert dm.mean.tolist() == pytest.approx([stats[b][0] for b in SHUFFLED])
    assert stats["B02"] == (429.9430203, 572.41639287)  # the BigEarthNet authors' numbers
    # flips move pixels but keep each image's per-band mean: normalised by the statistics of the same band
    expected = (raw["image"].mean(dim=(2, 3)) - dm.mean) / dm.std
    torch.testing.assert_close(out["image"].mean(dim=(2, 3)), expected, atol=1e-4, rtol=0)
    every = BigEarthNetPretrainDataModule(root=str(data / "bigearthnet"), train_splits=["train", "val", "test"], val_samples=3, batch_size=2)
    every.setup("fit")
    assert len(every.train_dataset) == 12 - 3 and len(every.val_dataset) == 3
    assert not set(every.train_dataset.indices) & set(every.val_dataset.indices)


def test_training_crops_are_random_resized_crops_and_validation_the_whole_image(data):
    dm = SSL4EOS12PretrainDataModule(root=str(data / "ssl4eo"), bands=["B02"], img_size=32, crop_scale=[0.05, 0.05], val_samples=1, batch_size=2)
    dm.setup("fit")
    train, val = dm.train_dataset.dataset, dm.val_dataset.dataset
    torch.manual_seed(0)
    a, b = train[0]["image"], train[0]["image"]
    assert a.shape == b.shape == (1, 32, 32) and not torch.equal(a, b)  # a new crop each draw
    whole = val[0]["image"]
    assert whole.shape == (1, 32, 32) and torch.equal(whole, val[0]["image"])  # validation: deterministic


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bands": ["B02", "B13"]}, "unknown: ['B13']"),
        ({"split": "s2a", "bands": ["B10"]}, "unknown: ['B10']"),
        ({"bands": ["B02", "B02"]}, "B02"),
        ({"crop_scale": [0.5, 0.2]}, "crop_scale must be [min, max]"),
        ({"split": "s1"}, "must be 's2c' (L1C) or 's2a' (L2A), got 's1'"),
        ({"seasons": "two"}, "seasons must be 'all'"),
        ({"batch_size": 64}, "fewer than batch_size 64"),
    ],
)
def test_bad_corpus_settings_say_what_was_expected(data, kwargs, message):
    with pytest.raises(ValueError, match=None) as error:
        dm = SSL4EOS12PretrainDataModule(root=str(data / "ssl4eo"), **{"val_samples": 1, **kwargs})
        dm.trainer = None
        dm.setup("fit")
    assert message in str(error.value)


def test_a_missing_band_file_is_named(data, tmp_path):
    root = make_ssl4eo(tmp_path / "ssl4eo", locations=1, splits=("s2a",), size=32)
    (root / "s2a" / "0000000" / SSL4EO_SEASONS[2] / "B8A.tif").unlink()
    images = SSL4EOS12Images(str(root), "s2a", bands=["B02", "B8A"])
    with pytest.raises(FileNotFoundError, match=r"B8A\.tif is missing \(band B8A"):
        images[2]


def test_fmow_sentinel_reads_satmaes_csvs_and_13_band_images_of_any_size(data):
    root = data / "fmow" / "fmow-sentinel"
    bands = ["B8A", "B02", "B12", "B10", "B01"]
    images = FMoWSentinel(str(root), "train", bands=bands)
    assert len(images) == FMOW_IMAGES["train"]
    sizes = {tuple(images[i]["image"].shape) for i in range(len(images))}
    assert {s[0] for s in sizes} == {5} and len(sizes) > 2  # the images keep their own sizes
    assert decoded(images[0]["image"][None]) == bands
    dm = FMoWSentinelPretrainDataModule(root=str(root), img_size=96, val_samples=2, batch_size=3)
    dm.setup("fit")
    assert len(dm.train_dataset) == FMOW_IMAGES["train"] and len(dm.val_dataset) == 2
    raw = next(iter(dm.train_dataloader()))
    assert set(raw) == {"image"} and raw["image"].shape == (3, 12, 96, 96)  # 12 bands: B10 left out by default
    assert decoded(raw["image"]) == dm.band_names
    assert CORPUS_STATISTICS["fmow_sentinel"]["B04"] == (1136.26026392, 965.23119807)  # SatMAE's numbers
    val = next(iter(dm.val_dataloader()))
    out = after_transfer(dm, {"image": val["image"].clone()}, training=False)
    torch.testing.assert_close(out["image"], (val["image"] - dm.mean[:, None, None]) / dm.std[:, None, None])


def test_fmow_sentinel_errors_name_the_file(data, tmp_path):
    root = make_fmow_sentinel(tmp_path / "copy")
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'val', 'test'\], got 'validation'"):
        FMoWSentinel(str(root), "validation")
    (root / "val.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"val\.csv is missing"):
        FMoWSentinel(str(root), "val")
    (root / "test_gt.csv").write_text("category,location_id\nairport,0\n")
    with pytest.raises(ValueError, match="expected an 'image_path' column"):
        FMoWSentinel(str(root), "test")
    images = FMoWSentinel(str(root), "train")
    first = tmp_path / "copy" / images.paths[0]
    first.unlink()
    with pytest.raises(FileNotFoundError, match=r"airport_0_0\.tif' not found"):
        images[0]
    import rasterio

    with rasterio.open(tmp_path / "copy" / images.paths[1]) as f:
        profile, four = f.profile, f.read([1, 2, 3, 4])
    profile.update(count=4)
    with rasterio.open(tmp_path / "copy" / images.paths[1], "w", **profile) as f:
        f.write(four)
    with pytest.raises(ValueError, match="has 4 bands; expected the 13 Sentinel-2 L1C bands"):
        images[1]


def test_a_partial_ssl4eo_copy_opens_and_train_and_val_share_one_scan(tmp_path):
    """TorchGeo's check looks for locations 0000000–0000009 only; a shard of the corpus without them opens
    here (and a folder with no location at all still gets TorchGeo's not-found error)."""
    from torchgeo.datasets import DatasetNotFoundError

    root = make_ssl4eo(tmp_path / "ssl4eo", locations=3, splits=("s2a",))
    for i, location in enumerate(sorted((root / "s2a").iterdir())):
        location.rename(location.with_name(f"{123 + i:07d}"))
    images = SSL4EOS12Images(str(root), "s2a", bands=["B02"])
    assert [n.decode() for n in images.locations] == ["0000123", "0000124", "0000125"] and len(images) == 12
    shared = SSL4EOS12Images(str(root), "s2a", seasons="random", bands=["B02"], listing=images.listing)
    assert shared.locations is images.locations and len(shared) == 3
    dm = SSL4EOS12PretrainDataModule(root=str(root), split="s2a", bands=["B02"], img_size=32, val_samples=1, batch_size=2)
    dm.setup("fit")
    assert dm.val_dataset.dataset.listing is dm.train_dataset.dataset.listing
    (tmp_path / "empty" / "s2a").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError):
        SSL4EOS12Images(str(tmp_path / "empty"), "s2a")


def test_the_hold_out_is_the_same_whatever_the_global_seed(data):
    """Every DDP rank must hold out the same locations: the draw has its own generator."""
    held = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        dm = SSL4EOS12PretrainDataModule(root=str(data / "ssl4eo"), split="s2a", img_size=32, val_samples=1, batch_size=2)
        dm.setup("fit")
        held.append(dm.val_dataset.indices.tolist())
    assert held[0] == held[1]


def test_val_samples_zero_means_no_validation(data):
    dm = SSL4EOS12PretrainDataModule(root=str(data / "ssl4eo"), split="s2a", img_size=32, val_samples=0, batch_size=2)
    dm.setup("fit")
    assert dm.val_dataloader() == [] and len(dm.train_dataset) == 3 * 4


def test_a_renamed_fmow_copy_reads_its_own_files_and_unknown_bands_are_named(tmp_path):
    """SatMAE's CSV paths start with 'fmow-sentinel/': in a copy called otherwise, they still mean that
    copy's files, never a sibling 'fmow-sentinel' folder's."""
    sibling = make_fmow_sentinel(tmp_path)  # tmp_path/fmow-sentinel
    renamed = make_fmow_sentinel(tmp_path / "other")
    renamed = renamed.rename(tmp_path / "fmow-sentinel-v2")
    images = FMoWSentinel(str(renamed), "train", bands=["B02"])
    assert images.locate(images.paths[0]) == renamed / Path(images.paths[0]).relative_to("fmow-sentinel")
    (renamed / Path(images.paths[0]).relative_to("fmow-sentinel")).unlink()
    with pytest.raises(FileNotFoundError, match="fmow-sentinel-v2"):  # not silently the sibling's copy
        images[0]
    assert (sibling / Path(images.paths[0]).relative_to("fmow-sentinel")).exists()
    with pytest.raises(ValueError, match=r"fMoW-Sentinel has bands .*unknown: \['B13'\]"):
        FMoWSentinel(str(renamed), "train", bands=["B02", "B13"])
    with pytest.raises(ValueError, match=r"SSL4EO-S12 s2a has bands .*unknown: \['B10'\]"):
        SSL4EOS12Images(str(tmp_path), "s2a", bands=["B10"])


def test_a_missing_bigearthnet_band_file_is_an_error_not_shifted_bands(tmp_path):
    root = make_bigearthnet(tmp_path / "ben")
    patch = min((root / "BigEarthNet-v1.0").iterdir())
    next(patch.glob("*_B01.tif")).unlink()  # TorchGeo globs the band files: 11 channels, each after B01 one place early
    dm = BigEarthNetPretrainDataModule(root=str(root), bands=["B02"], img_size=32, val_samples=1, batch_size=1)
    dm.setup("fit")
    index = next(i for i in range(len(dm.train_dataset)) if patch.name in str(dm.train_dataset.folders[i]["s2"]))
    with pytest.raises(ValueError, match="a sample has 11 channels; expected 12"):
        dm.train_dataset[index]


def test_a_small_ssl4eo_copy_never_holds_out_every_location(data, tmp_path):
    """The default val_samples (256) on a 3-location copy would leave training nothing: at most half the locations
    are held out, with a warning naming val_samples, the number asked and the number taken; one location cannot
    be split (an error naming val_samples, the count and the folder) unless val_samples is 0."""
    root = make_ssl4eo(tmp_path / "ssl4eo", locations=3, splits=("s2a",), size=32)
    dm = SSL4EOS12PretrainDataModule(root=str(root), split="s2a", bands=["B02"], img_size=32, batch_size=2)
    folder = re.escape(str(root / "s2a"))
    with pytest.warns(UserWarning, match=rf"SSL4EO-S12: val_samples=256 asks to hold out 256 of the 3 locations found "
                                         rf"under '{folder}' for validation, which would leave training 0; holding "
                                         r"out 1 \(half, at most\) and training on 2\. Set val_samples <= 1"):
        dm.setup("fit")
    val_locations = {dm.val_dataset.dataset.samples[i][0] for i in dm.val_dataset.indices}
    train_locations = {dm.train_dataset.dataset.samples[i][0] for i in dm.train_dataset.indices}
    assert len(val_locations) == 1 and len(train_locations) == 2 and not val_locations & train_locations
    assert len(dm.train_dataset) == 2 * 4 and len(dm.val_dataset) == 4
    for location in ("0000001", "0000002"):
        shutil.rmtree(root / "s2a" / location)
    one = SSL4EOS12PretrainDataModule(root=str(root), split="s2a", bands=["B02"], img_size=32, batch_size=2)
    with pytest.raises(ValueError, match=rf"SSL4EO-S12: val_samples=256 holds locations out of training for "
                                         rf"validation, but 1 location was found under '{folder}': expected at least 2"
                                         r".*Set val_samples: 0 \(no validation\)"):
        one.setup("fit")
    alone = SSL4EOS12PretrainDataModule(root=str(root), split="s2a", bands=["B02"], img_size=32, val_samples=0,
                                        batch_size=2)  # fmt: skip
    alone.setup("fit")
    assert len(alone.train_dataset) == 4 and alone.val_dataloader() == []
    # BigEarthNet's patches held out of training (val among train_splits) follow the same rule: 12 patches, 6 at most
    ben = BigEarthNetPretrainDataModule(root=str(data / "bigearthnet"), train_splits=["train", "val", "test"],
                                        batch_size=2)  # fmt: skip
    with pytest.warns(UserWarning, match=r"val_samples=1024 asks to hold out 1024 of the 12 patches .*holding out 6"):
        ben.setup("fit")
    assert len(ben.train_dataset) == 6 and len(ben.val_dataset) == 6


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("ssl4eo/s2a",
         r"root looks like a split folder \(it holds location folders\), one level too deep: set root: '{root}'"),
        ("ssl4eo/s2a/0000001", r"root looks like one location's folder, two levels too deep: set root: '{root}'"),
        (f"ssl4eo/s2a/0000001/{SSL4EO_SEASONS[1]}",
         r"root looks like one season's folder \(band files in it\), three levels too deep: set root: '{root}'"),
        (".", r"got: {top} holds ssl4eo\. root looks one level too shallow: set root: '{root}'"),
        ("ssl4eo/s2c", r"got: {root}/s2c does not exist\.$"),
    ],
    ids=["split-folder", "location-folder", "season-folder", "parent-of-root", "missing"],
)
def test_an_ssl4eo_root_too_deep_or_too_shallow_names_the_layout_and_the_folder_that_looks_right(tmp_path, given, hint):
    from torchgeo.datasets import DatasetNotFoundError

    root = make_ssl4eo(tmp_path / "ssl4eo", locations=2, splits=("s2a",), size=16)
    given = tmp_path / given
    layout = (r"expected root/s2a/<7-digit location, e.g\. 0000000>/<season folder, e\.g\. "
              r"20200305T100031_20200305T100033_T32TQM>/B1\.tif … B12\.tif \(root is the folder that holds the split "
              r"folders 's2c' and/or 's2a'\), got: ")
    for make in (SSL4EOS12Images, SSL4EOS12PretrainDataModule):
        with pytest.raises(DatasetNotFoundError) as error:
            dm = make(root=str(given), split="s2a", bands=["B02"])
            if make is SSL4EOS12PretrainDataModule:
                dm.setup("fit")
        message = str(error.value)
        assert message.startswith(f"SSL4EO-S12: no 's2a' images under root '{given}'; "), message
        assert re.search(layout, message), message
        assert re.search(hint.format(root=re.escape(str(root)), top=re.escape(str(tmp_path))), message), message


def test_an_ssl4eo_root_with_the_other_split_and_an_empty_split_folder_say_so(tmp_path):
    root = make_ssl4eo(tmp_path / "ssl4eo", locations=1, splits=("s2a",), size=16)
    with pytest.raises(FileNotFoundError, match=r"got: .* holds s2a\. root is right but holds 's2a', not 's2c': "
                                                r"set split: 's2a'\.$"):
        SSL4EOS12Images(str(root), "s2c", bands=["B02"])
    (root / "s2c").mkdir()
    (root / "s2c" / "notes.txt").write_text("")
    with pytest.raises(FileNotFoundError, match=r"its 's2c' folder holds no 7-digit location folders \(notes\.txt\)"):
        SSL4EOS12Images(str(root), "s2c", bands=["B02"])


@pytest.mark.parametrize("keep", [0.5, 0.005], ids=["pixels-cut-open-succeeds-read-fails", "header-cut-open-fails"])
def test_a_truncated_band_file_is_named_as_unreadable(tmp_path, keep):
    """A GeoTIFF cut short: GDAL opens it and fails the read ("Read failed") when the pixels are cut, fails the
    open when the header is; both are an OSError naming the file's full path, not GDAL's bare message."""
    root = make_ssl4eo(tmp_path / "ssl4eo", locations=1, splits=("s2a",), size=64)
    band = root / "s2a" / "0000000" / SSL4EO_SEASONS[1] / "B8A.tif"
    whole = band.read_bytes()
    band.write_bytes(whole[: max(int(len(whole) * keep), 16)])
    images = SSL4EOS12Images(str(root), "s2a", bands=["B02", "B8A"])
    images[0]  # another season's files read
    with pytest.raises(OSError, match=rf"SSL4EO-S12: band B8A's file '{re.escape(str(band.absolute()))}' is unreadable "
                                      rf"\({band.stat().st_size} bytes; GDAL: .*\): expected a complete GeoTIFF, got a "
                                      r"truncated or corrupt file") as error:
        images[1]
    assert isinstance(error.value.__cause__, rasterio.errors.RasterioError)
    fmow = make_fmow_sentinel(tmp_path / "fmow")
    images = FMoWSentinel(str(fmow), "train", bands=["B02"])
    path = images.locate(images.paths[0])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(OSError, match=rf"fMoW-Sentinel: the image '{re.escape(str(path.absolute()))}' is unreadable"):
        images[0]

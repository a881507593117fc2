"""Whole-scene prediction tile by tile: tiling, reading, writing, georeference, nodata, bad input."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import rasterio
import torch
from einops import rearrange
from rasterio.transform import from_origin
from terratorch.tasks import SemanticSegmentationTask

from terratorch_specmae.callbacks import SceneWriter
from terratorch_specmae.datamodules import SceneTilesDataModule
from terratorch_specmae.datamodules.scene_tiles import scene_tiles, tile_starts

MEANS, STDS = [80.0, 70.0, 60.0, 90.0], [10.0, 12.0, 14.0, 16.0]
TRANSFORM = from_origin(290_000, 9_120_000, 28.5, 28.5)


@pytest.mark.parametrize(
    "height, width, crop, stride", [(96, 349, 64, 48), (64, 64, 64, 48), (40, 50, 64, 48), (128, 192, 64, 64), (100, 70, 32, 7)]
)
def test_keep_windows_partition_the_scene_and_keep_tile_centres(height, width, crop, stride):
    tiles = scene_tiles(height, width, crop, stride)
    cover = np.zeros((height, width), int)
    margin = (crop - stride) // 2
    for t in tiles:
        k = t.keep
        cover[k.row_off : k.row_off + k.height, k.col_off : k.col_off + k.width] += 1
        assert t.row <= k.row_off and k.row_off + k.height <= t.row + crop  # inside its tile
        assert t.col <= k.col_off and k.col_off + k.width <= t.col + crop
        # away from the scene's edges, kept pixels are at least `margin` from the tile's border
        if k.row_off > 0:
            assert k.row_off - t.row >= margin
        if k.row_off + k.height < height:
            assert t.row + crop - (k.row_off + k.height) >= margin
    assert (cover == 1).all()


def test_tile_starts_end_at_the_edge_and_reject_gaps():
    assert tile_starts(349, 64, 48) == [0, 48, 96, 144, 192, 240, 285]
    assert tile_starts(50, 64, 48) == [0]
    with pytest.raises(ValueError, match="stride <= crop"):
        tile_starts(100, 32, 40)


def write_scene(path, data, nodata=None, descriptions=None):
    profile = {"driver": "GTiff", "height": data.shape[1], "width": data.shape[2], "count": data.shape[0],
               "dtype": data.dtype.name, "crs": "EPSG:31985", "transform": TRANSFORM, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)
    return path


@pytest.fixture
def task():
    torch.manual_seed(0)
    return SemanticSegmentationTask(
        model_factory="EncoderDecoderFactory",
        model_args={
            "backbone": "s2mae_vit_tiny", "backbone_bands": ["BLUE", "GREEN", "RED", "NIR_BROAD"], "backbone_img_size": 32,
            "backbone_patch_size": 8, "backbone_depth": 4, "backbone_fold": "concat",
            "necks": [{"name": "SelectIndices", "indices": [0, 1, 2, 3]}, {"name": "ReshapeTokensToImage", "remove_cls_token": False},
                      {"name": "LearnedInterpolateToPyramidal"}],
            "decoder": "UperNetDecoder", "decoder_channels": 16, "num_classes": 3,
        },
    ).eval()  # fmt: skip


def predict(task, dm, out_dir):
    writer = SceneWriter(out_dir=str(out_dir))
    trainer = pl.Trainer(accelerator="cpu", callbacks=[writer], logger=False, enable_progress_bar=False)
    trainer.predict(task, datamodule=dm, return_predictions=False)
    return writer.written


def model_classes(task, raw):
    """The model's classes on one raw ``[C, h, w]`` window, normalised by hand."""
    x = (torch.as_tensor(raw, dtype=torch.float32) - torch.tensor(MEANS)[:, None, None]) / torch.tensor(STDS)[:, None, None]
    with torch.no_grad():
        return task(x[None]).output.argmax(1)[0].numpy()


def test_each_kept_window_is_the_model_on_its_tile_and_georeference_is_kept(task, tmp_path, true_fp32):
    rng = np.random.default_rng(0)
    scene = rng.uniform(40, 120, (4, 70, 90)).astype(np.float32)
    path = write_scene(tmp_path / "scene.tif", scene)
    dm = SceneTilesDataModule(str(path), crop=32, stride=24, means=MEANS, stds=STDS, batch_size=3)
    tif, png = predict(task, dm, tmp_path / "maps")
    assert tif.name == "scene_pred.tif" and png.stat().st_size > 1000
    with rasterio.open(tif) as src:
        assert src.crs.to_epsg() == 31985 and src.transform == TRANSFORM and src.nodata == 255
        predicted = src.read(1)
    assert predicted.shape == (70, 90)
    for t in dm.tiles:
        expected = model_classes(task, scene[:, t.row : t.row + 32, t.col : t.col + 32])
        k = t.keep
        got = predicted[k.row_off : k.row_off + k.height, k.col_off : k.col_off + k.width]
        want = expected[k.row_off - t.row : k.row_off - t.row + k.height, k.col_off - t.col : k.col_off - t.col + k.width]
        np.testing.assert_array_equal(got, want)


def test_a_scene_that_fits_one_tile_equals_the_untiled_model(task, tmp_path, true_fp32):
    scene = np.random.default_rng(1).uniform(40, 120, (4, 32, 32)).astype(np.float32)
    dm = SceneTilesDataModule(str(write_scene(tmp_path / "s.tif", scene)), crop=32, means=MEANS, stds=STDS)
    tif, _ = predict(task, dm, tmp_path)
    with rasterio.open(tif) as src:
        np.testing.assert_array_equal(src.read(1), model_classes(task, scene))


def test_nodata_and_nan_pixels_are_written_as_nodata(task, tmp_path):
    scene = np.random.default_rng(2).uniform(40, 120, (4, 40, 40)).astype(np.float32)
    scene[2, 5, 7] = np.nan
    scene[:, 30:33, 10] = -9999
    dm = SceneTilesDataModule(str(write_scene(tmp_path / "s.tif", scene, nodata=-9999)), crop=32, means=MEANS, stds=STDS)
    image = dm.dataset[0]["image"]
    assert torch.isfinite(image).all()  # missing pixels enter the model as the band mean (0)
    assert image[2, 5, 7] == 0 and (image[:, 30:32, 10] == 0).all()
    tif, _ = predict(task, dm, tmp_path)
    with rasterio.open(tif) as src:
        predicted = src.read(1)
    missing = np.zeros((40, 40), bool)
    missing[5, 7] = missing[30:33, 10] = True
    assert (predicted[missing] == 255).all() and (predicted[~missing] < 3).all()


@pytest.mark.parametrize("channel_major", [False, True])
def test_two_dates_are_split_like_terratorchs_expand_temporal_dimension(tmp_path, channel_major):
    pair = np.random.default_rng(3).uniform(40, 120, (8, 32, 32)).astype(np.float32)
    dm = SceneTilesDataModule(str(write_scene(tmp_path / "p.tif", pair)), crop=32, means=MEANS, stds=STDS, dates=2,
                              temporal_channel_major=channel_major)
    pattern = "(channels time) h w -> channels time h w" if channel_major else "(time channels) h w -> channels time h w"
    expected = rearrange(torch.from_numpy(pair), pattern, channels=4)
    expected = (expected - torch.tensor(MEANS)[:, None, None, None]) / torch.tensor(STDS)[:, None, None, None]
    torch.testing.assert_close(dm.dataset[0]["image"], expected)


def test_bands_are_read_by_name(tmp_path):
    data = np.stack([np.full((32, 32), v, np.float32) for v in (1, 2, 3, 4)])
    path = write_scene(tmp_path / "n.tif", data, descriptions=["RED", "GREEN", "BLUE", "NIR_BROAD"])
    dm = SceneTilesDataModule(str(path), crop=32, means=[0] * 4, stds=[1] * 4, bands=["BLUE", "GREEN", "RED", "NIR_BROAD"])
    assert dm.dataset[0]["image"][:, 0, 0].tolist() == [3, 2, 1, 4]
    with pytest.raises(ValueError, match=r"bands \['SWIR_1'\] asked for are not among them"):
        SceneTilesDataModule(str(path), crop=32, means=[0] * 4, stds=[1] * 4, bands=["BLUE", "GREEN", "RED", "SWIR_1"])


def test_bad_inputs_say_what_was_expected(tmp_path):
    path = write_scene(tmp_path / "b.tif", np.zeros((4, 32, 32), np.float32))
    with pytest.raises(ValueError, match="Expected 3 means and stds per date × 1 date\\(s\\) = 3 bands; got 3 means, 3 stds and 4 bands"):
        SceneTilesDataModule(str(path), crop=32, means=[0] * 3, stds=[1] * 3)
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        SceneTilesDataModule(str(tmp_path / "missing.tif"), crop=32, means=MEANS, stds=STDS)
    with pytest.raises(ValueError, match="stride <= crop"):
        SceneTilesDataModule(str(path), crop=32, stride=33, means=MEANS, stds=STDS)
    with pytest.raises(ValueError, match="only predicts"):
        SceneTilesDataModule(str(path), crop=32, means=MEANS, stds=STDS).setup("fit")


def test_loader_workers_read_the_same_tiles(tmp_path):
    scene = np.random.default_rng(4).uniform(40, 120, (4, 50, 70)).astype(np.float32)
    path = write_scene(tmp_path / "w.tif", scene)
    batches = []
    for workers in (0, 2):
        dm = SceneTilesDataModule(str(path), crop=32, stride=24, means=MEANS, stds=STDS, batch_size=4, num_workers=workers)
        dm.dataset.src  # the parent's open handle must not travel to the workers
        batches.append(torch.cat([b["image"] for b in dm.predict_dataloader()]))
    assert batches[0].shape == (len(dm.tiles), 4, 32, 32)
    torch.testing.assert_close(batches[0], batches[1])

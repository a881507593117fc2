"""The HSI pixel-patch datamodule on a generated scene written as GeoTIFFs."""

import numpy as np
import pytest
import rasterio

from terratorch_specmae.datamodules.hsi_pixels import HSIPixelDataModule
from terratorch_specmae.datamodules.synthetic_hsi import make_scene, write_scene


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    scene = make_scene(size=32, num_bands=12, seed=2)
    return scene, write_scene(scene, tmp_path_factory.mktemp("scene"))


def module(paths, **kwargs):
    args = {"hsi_path": str(paths["hsi"]), "aux_paths": [str(paths["aux"])], "labels_path": str(paths["labels"]),
            "split_path": str(paths["split"]), "patch_size": 5, "batch_size": 16}
    return HSIPixelDataModule(**{**args, **kwargs})


def test_labelled_pixels_follow_the_split_files(scene_files):
    scene, paths = scene_files
    dm = module(paths)
    dm.setup("fit")
    train, val, test = dm.datasets["train"], dm.datasets["val"], dm.datasets["test"]
    assert len(train) + len(val) == (scene.split == 1).sum() and len(test) == (scene.split == 2).sum()
    assert abs(len(val) - 0.2 * (len(train) + len(val))) <= 1
    pixels = {name: set(zip(d.rows.tolist(), d.cols.tolist(), strict=True)) for name, d in dm.datasets.items()}
    assert not pixels["train"] & pixels["val"] and not pixels["train"] & pixels["test"]
    assert dm.num_classes == 6 and dm.band_names == scene.band_names + ["DSM"]
    sample = train[0]
    assert sample["image"].shape == (13, 5, 5) and sample["label"] == scene.labels[sample["row"], sample["col"]] - 1
    # the centre pixel is the scene's pixel, standardised per band with the scene's statistics
    raw = np.concatenate([scene.hsi, scene.dsm[None]])[:, sample["row"], sample["col"]]
    expected = (raw - np.array(dm.means)) / np.array(dm.stds)
    np.testing.assert_allclose(sample["image"][:, 2, 2].numpy(), expected, rtol=1e-4, atol=1e-5)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (16, 13, 5, 5) and batch["label"].dtype.is_floating_point is False


def test_pretraining_and_prediction_cover_the_scene(scene_files):
    _, paths = scene_files
    dm = module(paths, labels_path=None, split_path=None, max_pretrain_pixels=500)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 500 and len(dm.datasets["val"]) == int(32 * 32 * 0.2)
    assert "label" not in dm.datasets["train"][0]
    dm.setup("predict")
    predict = dm.datasets["predict"]
    assert len(predict) == 32 * 32 and (predict[33]["row"], predict[33]["col"]) == (1, 1)


def test_bad_rasters_are_clear_errors(scene_files, tmp_path):
    scene, paths = scene_files
    shifted = tmp_path / "aux_shifted.tif"
    with rasterio.open(paths["aux"]) as src:
        profile = {**src.profile, "transform": src.transform @ rasterio.Affine.translation(3, 0)}
        with rasterio.open(shifted, "w", **profile) as dst:
            dst.write(src.read())
    with pytest.raises(ValueError, match="is not on the HSI's grid"):
        module(paths, aux_paths=[str(shifted)]).setup("fit")
    holed = tmp_path / "hsi_nan.tif"
    with rasterio.open(paths["hsi"]) as src:
        data = src.read()
        data[3, 4, 5] = np.nan
        with rasterio.open(holed, "w", **src.profile) as dst:
            dst.write(data)
    with pytest.raises(ValueError, match=r"1 NaN/nodata values in the input rasters \(first: band 3, pixel 4, 5\)"):
        module(paths, hsi_path=str(holed)).setup("fit")
    with pytest.raises(ValueError, match="Raster not found"):
        module(paths, hsi_path=str(tmp_path / "missing.tif")).setup("fit")
    with pytest.raises(ValueError, match="patch_size must be odd"):
        module(paths, patch_size=4)


def test_pixel_classification_beats_chance_reports_kappa_and_maps_the_scene(tmp_path):
    """PixelClassificationTask (TerraTorch's ClassificationTask + κ) with ssmae_base; ClassMapWriter on predict."""
    import lightning.pytorch as pl
    import torch

    from terratorch_specmae.callbacks import ClassMapWriter
    from terratorch_specmae.tasks import PixelClassificationTask

    scene = make_scene(size=64, num_bands=24, seed=0)
    paths = write_scene(scene, tmp_path / "scene")
    dm = module(paths, patch_size=7, batch_size=32)
    pl.seed_everything(0)
    task = PixelClassificationTask(
        model_args={"backbone": "ssmae_base", "backbone_bands": scene.band_names + ["DSM"], "backbone_embed_dim": 64,
                    "backbone_num_heads": 4, "decoder": "IdentityDecoder", "num_classes": 6},
        model_factory="EncoderDecoderFactory", lr=1e-3,
    )
    writer = ClassMapWriter(out_dir=str(tmp_path / "maps"), class_names=["water", "grass", "trees", "soil", "asphalt", "roofs"])
    trainer = pl.Trainer(max_epochs=8, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, callbacks=[writer])
    trainer.fit(task, datamodule=dm)
    metrics = trainer.test(task, datamodule=dm, verbose=False)[0]
    labels = scene.labels[scene.split == 2] - 1
    majority = np.bincount(labels).max() / len(labels)
    assert metrics["test/Accuracy_Micro"] > majority + 0.2  # OA well above the majority class
    assert metrics["test/Accuracy"] > 1 / 6 + 0.3  # AA well above chance
    assert 0.3 < metrics["test/Kappa"] <= 1.0

    trainer.predict(task, datamodule=dm)
    tif, png = writer.written
    assert png.stat().st_size > 5_000
    with rasterio.open(tif) as pred, rasterio.open(paths["hsi"]) as src:
        assert pred.crs == src.crs and pred.transform == src.transform and pred.shape == src.shape
        classes = pred.read(1)
    assert classes.max() < 6  # every pixel predicted (255 = none)
    agreement = (classes == scene.classes).mean()  # against the complete class map, labelled or not
    assert agreement > majority + 0.2, agreement
    assert torch.isfinite(torch.tensor(metrics["test/loss"]))

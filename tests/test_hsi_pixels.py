"""The HSI pixel-patch datamodule on a generated scene written as GeoTIFFs."""

import re
from types import SimpleNamespace

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


def _labels_with_255(scene, paths, folder, extra: dict[int, int] | None = None):
    """labels.tif with 255 (no nodata declared) on 5 train, 3 test and 12 unlabelled pixels, plus ``extra``
    (value → count) on further train pixels; returns the file and the labels written."""
    labels = scene.labels.copy()
    train, test, unlabelled = (np.argwhere(scene.split == s) for s in (1, 2, 0))
    for px in (train[:5], test[:3], unlabelled[:12]):
        labels[px[:, 0], px[:, 1]] = 255
    start = 5
    for value, count in (extra or {}).items():
        px = train[start : start + count]
        labels[px[:, 0], px[:, 1]] = value
        start += count
    folder.mkdir(exist_ok=True)
    path = folder / "labels_255.tif"
    with rasterio.open(paths["labels"]) as src, rasterio.open(path, "w", **src.profile) as dst:
        assert src.nodata is None
        dst.write(labels[None].astype(src.dtypes[0]))
    return path, labels


def test_a_label_beyond_the_classes_is_refused_naming_file_values_and_label_nodata(scene_files, tmp_path):
    """255 in a label raster (an 'unlabelled' value) would be class 254 and fail in the loss as "IndexError:
    Target 254 is out of bounds"; it is refused when the classes are known: from the num_classes option, or from
    the model the trainer attached (PixelClassificationTask's model_args.num_classes)."""
    import lightning.pytorch as pl

    from terratorch_specmae.tasks import PixelClassificationTask

    scene, paths = scene_files
    marked, _ = _labels_with_255(scene, paths, tmp_path)
    name = re.escape(repr(str(marked)))
    with pytest.raises(ValueError, match=rf"^label raster {name} holds 20 pixels with labels beyond the 6 classes "
                       r"\(num_classes: 6\): 255 \(20 pixels\); expected 0 \(unlabelled\) or 1…6 \(the model's "
                       r"classes 0…5, shifted by one\)\. If 255 marks unlabelled pixels, set the datamodule's "
                       r"label_nodata: 255 \(those pixels are then left out\); if there are more classes, raise "
                       r"num_classes\.$"):  # fmt: skip
        module(paths, labels_path=str(marked), num_classes=6).setup("fit")
    task = PixelClassificationTask(
        model_args={"backbone": "ssmae_base", "backbone_bands": scene.band_names + ["DSM"], "backbone_embed_dim": 64,
                    "backbone_num_heads": 4, "decoder": "IdentityDecoder", "num_classes": 6},
        model_factory="EncoderDecoderFactory",
    )  # fmt: skip
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    with pytest.raises(ValueError, match=rf"^label raster {name} holds 20 pixels with labels beyond the 6 classes "
                       r"\(model_args\.num_classes: 6\): 255 \(20 pixels\);.* label_nodata: 255 .* raise "
                       r"model_args\.num_classes\.$"):  # fmt: skip
        trainer.fit(task, datamodule=module(paths, labels_path=str(marked)))
    skipping = PixelClassificationTask(model_args=task.hparams["model_args"], model_factory="EncoderDecoderFactory",
                                       ignore_index=254)  # fmt: skip
    dm = module(paths, labels_path=str(marked))
    dm.trainer = SimpleNamespace(lightning_module=skipping)  # what Trainer.fit attaches before setup
    dm.setup("fit")  # 255 → class 254: the loss and metrics skip it
    assert dm.num_classes == 6 and 254 in np.concatenate([d.labels for d in dm.datasets.values()])


def test_label_nodata_leaves_its_pixels_out_of_every_set(scene_files, tmp_path):
    """label_nodata: 255 reads those pixels as unlabelled: no train, val or test sample holds one, the classes
    served stay 0…5; a value beyond the classes other than label_nodata is still refused."""
    scene, paths = scene_files
    marked, labels = _labels_with_255(scene, paths, tmp_path)
    dm = module(paths, labels_path=str(marked), label_nodata=255, num_classes=6)
    dm.setup("fit")
    served = {(r, c) for d in dm.datasets.values() for r, c in zip(d.rows.tolist(), d.cols.tolist(), strict=True)}
    assert not served & set(map(tuple, np.argwhere(labels == 255).tolist()))
    assert len(served) == ((scene.split > 0) & (labels != 255)).sum() == (scene.split > 0).sum() - 8
    classes = np.concatenate([d.labels for d in dm.datasets.values()])
    assert classes.min() == 0 and classes.max() == 5 and dm.num_classes == 6
    sample = dm.datasets["test"][0]
    assert sample["label"] == scene.labels[sample["row"], sample["col"]] - 1
    with_seven, _ = _labels_with_255(scene, paths, tmp_path / "seven", {7: 3, 9: 1})
    with pytest.raises(ValueError, match=rf"label raster {re.escape(repr(str(with_seven)))} holds 4 pixels with labels "
                       r"beyond the 6 classes \(num_classes: 6\): 7 \(3 pixels\), 9 \(1 pixel\);"):  # fmt: skip
        module(paths, labels_path=str(with_seven), label_nodata=255, num_classes=6).setup("fit")

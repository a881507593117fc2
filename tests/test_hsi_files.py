"""HSI benchmark files as their users download them (fake files in the real layouts, tests/data/hsi)."""

import pickle
import re

import numpy as np
import pytest
import rasterio
import torch
from data.hsi.data import OUC, make_envi, make_hong, make_houston2013, make_ouc, write_mat
from scipy.io import loadmat, savemat

from terratorch_specmae.datamodules.hsi_files import open_scene, read_pixel_index
from terratorch_specmae.datamodules.hsi_pixels import HSIPixelDataModule


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("hsi")
    return {
        "root": root,
        **{name: make_ouc(root / "ouc", name) for name in OUC},
        "hong_berlin": make_hong(root / "hong", "berlin"),
        "hong_augsburg": make_hong(root / "hong", "augsburg"),
        "h13": make_houston2013(root / "v5"),
        "h13_v73": make_houston2013(root / "v73", v73=True),
        "envi": make_envi(root),
    }


def ouc_module(paths, **kwargs):
    args = {"hsi_path": str(paths["hsi"]), "aux_paths": [str(paths["aux"])], "labels_path": str(paths["gt"]),
            "split_path": str(paths["index"]), "patch_size": 7}  # fmt: skip
    return HSIPixelDataModule(**{**args, **kwargs})


@pytest.mark.parametrize("name", list(OUC))
def test_ss_mae_files_read_as_they_hold_them(files, name):
    """berlin_hsi.mat … berlin_index.mat: bands, rows and columns, values, labels and the fixed split."""
    paths, (_, prefix, bands, _, second, second_bands, classes, rows, cols) = files[name], OUC[name]
    cube = loadmat(paths["hsi"])[f"{prefix}_hsi"]  # H × W × C, as in the file
    assert cube.shape == (rows, cols, bands)
    scene = open_scene(paths["hsi"])
    assert scene.shape == (bands, rows, cols) and scene.transform is None
    np.testing.assert_array_equal(scene.read()[:, 5, 3], cube[5, 3].astype(np.float32))
    np.testing.assert_array_equal(scene.read(slice(2, 6), slice(1, 4)), cube[2:6, 1:4].transpose(2, 0, 1))
    assert open_scene(paths["aux"]).shape == (second_bands or 1, rows, cols)
    index = loadmat(paths["index"])
    gt = loadmat(paths["gt"])[f"{prefix}_gt"]
    dm = ouc_module(paths)
    dm.setup("fit")
    assert dm.shape == (rows, cols) and dm.num_classes == gt.max() <= classes
    assert len(dm.band_names) == bands + (second_bands or 1)
    assert dm.band_names[bands:] == ([f"{prefix}_sar_{i}" for i in range(4)] if second == "sar" else [f"{prefix}_lidar"])
    for split, parts in (("train", ("train", "val")), ("test", ("test",))):  # validation: 20 % of train
        served = [(r, c) for part in parts for r, c in zip(dm.datasets[part].rows, dm.datasets[part].cols, strict=True)]
        expected = index[f"{prefix}_{split}"].astype(int)
        assert sorted(served) == sorted(map(tuple, expected.tolist()))
        sample = dm.datasets[split][7]
        assert sample["label"] == gt[sample["row"], sample["col"]] - 1
        assert sample["image"].shape == (len(dm.band_names), 7, 7)
        raw = cube[sample["row"], sample["col"]].astype(np.float64)
        standardised = (raw - np.array(dm.means[:bands])) / np.array(dm.stds[:bands])
        np.testing.assert_allclose(sample["image"][:bands, 3, 3].numpy(), standardised, rtol=1e-4, atol=1e-4)


def test_hong_layout_train_and_test_images(files):
    """HS-SAR Berlin / HS-SAR-DSM Augsburg: TrainImage and TestImage are the split; the DSM is one more band."""
    for key, bands in (("hong_berlin", 244 + 4), ("hong_augsburg", 180 + 4 + 1)):
        paths = files[key]
        aux = [str(paths["sar"])] + ([str(paths["dsm"])] if "dsm" in paths else [])
        dm = HSIPixelDataModule(str(paths["hsi"]), aux, labels_path=str(paths["train"]),
                                test_labels_path=str(paths["test"]))  # fmt: skip
        dm.setup("fit")
        train, test = (loadmat(paths[s])[n] for s, n in (("train", "TrainImage"), ("test", "TestImage")))
        assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == (train > 0).sum()
        assert len(dm.datasets["test"]) == (test > 0).sum()
        sample = dm.datasets["test"][0]
        assert sample["image"].shape == (bands, 7, 7) and sample["label"] == test[sample["row"], sample["col"]] - 1
        assert dm.num_classes == max(train.max(), test.max())


def test_matlab_v73_reads_as_v5_in_windows(files):
    """MATLAB v7.3 (HDF5, column-major) gives the same [C, H, W] as v5, window by window."""
    v5, v73 = open_scene(files["h13"]["hsi"]), open_scene(files["h13_v73"]["hsi"])
    assert v73.windowed and not v5.windowed and v73.shape == v5.shape == (144, 16, 84)
    np.testing.assert_array_equal(v73.read(), v5.read())
    np.testing.assert_array_equal(v73.read(slice(3, 10), slice(40, 47)), v5.read(slice(3, 10), slice(40, 47)))
    lidar = open_scene(files["h13_v73"]["lidar"])
    np.testing.assert_array_equal(lidar.read(), open_scene(files["h13"]["lidar"]).read())
    assert lidar.shape == (1, 16, 84)
    dm = HSIPixelDataModule(str(files["h13_v73"]["hsi"]), [str(files["h13_v73"]["lidar"])],
                            labels_path=str(files["h13_v73"]["train"]), test_labels_path=str(files["h13_v73"]["test"]),
                            lazy=True)  # fmt: skip
    dm.setup("fit")
    assert dm.band_names[-1] == "LiDAR" and len(dm.band_names) == 145


def test_envi_header_gives_wavelengths_and_georeference(files):
    envi = files["envi"]
    for path in (envi["header"], envi["hsi"]):  # either file of the pair
        scene = open_scene(path)
        assert scene.shape == (48, 24, 40) and scene.crs.to_epsg() == 32615
        assert scene.transform.c == 271460.0 and scene.transform.f == 3290891.0
        np.testing.assert_allclose(scene.wavelengths, envi["wavelengths"], atol=1e-3)  # µm in the header → nm
    raw = np.fromfile(envi["hsi"], "<u2").reshape(48, 24, 40)
    np.testing.assert_array_equal(open_scene(envi["header"]).read(slice(5, 9), slice(30, 40)), raw[:, 5:9, 30:40])
    dm = HSIPixelDataModule(str(envi["header"]), labels_path=str(envi["labels"]))
    dm.setup("fit")
    assert dm.band_names[:2] == ["380.0nm", "394.3nm"] and dm.wavelengths[-1] == pytest.approx(1050.0)
    assert dm.profile["crs"].to_epsg() == 32615


def test_wavelengths_option_names_the_bands(files):
    paths = files["houston2018"]
    wavelengths = np.linspace(374.4, 1047.1, 50).tolist()
    dm = ouc_module(paths, wavelengths=wavelengths)
    dm.setup("fit")
    assert dm.band_names[0] == "374.4nm" and dm.band_names[49] == "1047.1nm" and dm.band_names[50] == "houston_lidar"
    with pytest.raises(ValueError, match="49 wavelengths given for the 50 bands"):
        ouc_module(paths, wavelengths=wavelengths[:49]).setup("fit")


def _modules(files, name, **kwargs):
    if name == "augsburg":  # MATLAB v5: read whole, then cut
        return ouc_module(files[name], **kwargs)
    if name == "h13_v73":  # MATLAB v7.3: windows through h5py
        paths = files[name]
        return HSIPixelDataModule(str(paths["hsi"]), [str(paths["lidar"])], labels_path=str(paths["train"]),
                                  test_labels_path=str(paths["test"]), **kwargs)  # fmt: skip
    envi = files["envi"]  # ENVI: windows through GDAL
    return HSIPixelDataModule(str(envi["header"]), labels_path=str(envi["labels"]), **kwargs)


@pytest.mark.parametrize("name", ["augsburg", "h13_v73", "envi"])
def test_lazy_patches_equal_in_memory_ones(files, name):
    """lazy=True reads each patch from the files (edges repeated at the border) and standardises it
    with statistics read in blocks of rows: the same samples as the in-memory scene."""
    eager, lazy = _modules(files, name), _modules(files, name, lazy=True)
    assert lazy.lazy and not eager.lazy
    eager.setup("fit")
    lazy.setup("fit")
    np.testing.assert_allclose(lazy.means, eager.means, rtol=1e-5)
    np.testing.assert_allclose(lazy.stds, eager.stds, rtol=1e-4)
    for split in ("train", "val", "test"):
        assert len(lazy.datasets[split]) == len(eager.datasets[split])
        for i in range(0, len(eager.datasets[split]), 7):
            a, b = eager.datasets[split][i], lazy.datasets[split][i]
            assert (a["row"], a["col"], a["label"]) == (b["row"], b["col"], b["label"])
            np.testing.assert_allclose(b["image"].numpy(), a["image"].numpy(), atol=2e-4)
    for dm in (eager, lazy):
        dm.setup("predict")
    height, width = eager.shape
    corners = [0, width - 1, width, height * width - 1]  # border pixels: the window is cut and its edges repeated
    for i in corners:
        np.testing.assert_allclose(
            lazy.datasets["predict"][i]["image"].numpy(), eager.datasets["predict"][i]["image"].numpy(), atol=2e-4
        )
    copy = pickle.loads(pickle.dumps(lazy.datasets["test"]))  # what a DataLoader worker receives
    np.testing.assert_array_equal(copy[3]["image"].numpy(), lazy.datasets["test"][3]["image"].numpy())


def test_bad_files_are_clear_errors(files, tmp_path):
    paths = files["berlin"]
    with pytest.raises(ValueError, match=r"holds 3 arrays \['berlin_all', 'berlin_test', 'berlin_train'\]; name the one"):
        open_scene(paths["index"])
    with pytest.raises(ValueError, match=r"has no array 'hsi'; it holds \['berlin_hsi'\]"):
        open_scene(f"{paths['hsi']}:hsi")
    four_d = write_mat(tmp_path / "cube4d.mat", {"x": np.zeros((4, 5, 6, 2))})
    with pytest.raises(ValueError, match=r"has shape \(4, 5, 6, 2\); expected H × W or H × W × C"):
        open_scene(four_d)
    with pytest.raises(ValueError, match="Raster not found"):
        open_scene(tmp_path / "missing.mat")
    not_mat = tmp_path / "broken.mat"
    not_mat.write_bytes(b"not a MATLAB file at all" * 10)
    with pytest.raises(ValueError, match="Cannot read .*broken.mat' as a MATLAB .mat file"):
        open_scene(not_mat)
    outside = write_mat(tmp_path / "index_outside.mat", {"x_train": np.array([[0, 0], [56, 3]]), "x_test": np.array([[1, 1]])})
    with pytest.raises(ValueError, match=r"1 pixels outside the 56 × 16 scene \(first: row 56, column 3\); expected 0-based"):
        read_pixel_index(outside, "x_train", (56, 16))
    gt = loadmat(paths["gt"])["berlin_gt"]
    r, c = np.argwhere(gt == 0)[0]
    unlabelled = write_mat(tmp_path / "index_unlabelled.mat",
                           {"b_train": np.array([[r, c]]), "b_test": np.argwhere(gt > 0)[:3]})  # fmt: skip
    with pytest.raises(ValueError, match=rf"1 train pixels of .* are unlabelled \(0\) .* \(first: row {r}, column {c}\)"):
        ouc_module(paths, split_path=str(unlabelled)).setup("fit")
    no_test = write_mat(tmp_path / "index_no_test.mat", {"b_train": np.argwhere(gt > 0)[:3], "b_all": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"expected exactly one array named 'test' or '<name>_test'"):
        ouc_module(paths, split_path=str(no_test)).setup("fit")
    small = write_mat(tmp_path / "sar_small.mat", {"sar": np.zeros((55, 16, 4))})
    with pytest.raises(ValueError, match="sar_small.mat is not on the HSI's grid: expected 56×16 px"):
        ouc_module(paths, aux_paths=[str(small)]).setup("fit")
    wrong_gt = write_mat(tmp_path / "gt_wrong.mat", {"gt": np.zeros((16, 56), np.uint8)})
    with pytest.raises(ValueError, match=r"has shape 1 × 16 × 56 .* expected one band of 56 × 16, the scene's size"):
        ouc_module(paths, labels_path=str(wrong_gt)).setup("fit")
    hong = files["hong_berlin"]
    with pytest.raises(ValueError, match=r"pixels are labelled in both .*TrainImage.mat' and .*TrainImage.mat'"):
        HSIPixelDataModule(str(hong["hsi"]), labels_path=str(hong["train"]), test_labels_path=str(hong["train"])).setup("fit")
    with pytest.raises(ValueError, match="test_labels_path needs labels_path"):
        HSIPixelDataModule(str(hong["hsi"]), test_labels_path=str(hong["test"]))
    header = tmp_path / "lonely.hdr"
    header.write_text((files["envi"]["header"]).read_text())
    with pytest.raises(ValueError, match=r"has no data file beside it; expected one of: lonely, lonely.img"):
        open_scene(header)
    bad_header = tmp_path / "short.hdr"
    (tmp_path / "short.img").write_bytes(files["envi"]["hsi"].read_bytes())
    text = files["envi"]["header"].read_text().splitlines()
    text[-1] = "wavelength = {0.4, 0.5}"
    bad_header.write_text("\n".join(text) + "\n")
    with pytest.warns(UserWarning, match="the ENVI header lists 2 wavelengths for 48 bands; they are ignored"):
        assert open_scene(bad_header).wavelengths is None  # the wavelengths option can name them


def test_lazy_scenes_read_in_dataloader_worker_processes(files):
    """Forked DataLoader workers open their own file handles (HDF5 and GDAL handles do not survive a fork)."""
    for hsi, aux in ((files["h13_v73"]["hsi"], files["h13_v73"]["lidar"]), (files["envi"]["header"], None)):
        dm = HSIPixelDataModule(str(hsi), [str(aux)] if aux else [], patch_size=5, batch_size=32, lazy=True,
                                max_pretrain_pixels=128)  # fmt: skip
        dm.setup("fit")
        dataset = dm.datasets["train"]
        dataset[0]  # the parent process opens the file first
        parent = dataset.scenes[0]._pid
        serial = torch.cat([b["image"] for b in dm._loader("train")])
        loader = torch.utils.data.DataLoader(OwnHandle(dataset), batch_size=32, num_workers=2)
        batches = list(loader)
        parallel = torch.cat([b[0] for b in batches])
        assert serial.shape[0] == 128 and torch.equal(serial, parallel)
        assert all(b[1].all() for b in batches)  # each worker read through a handle it opened itself
        assert {int(p) for b in batches for p in b[2]} - {parent}  # in processes other than the parent
        assert dataset.scenes[0]._pid == parent  # and the parent's handle is still its own


class OwnHandle(torch.utils.data.Dataset):
    """A sample, whether the scene's open handle belongs to the reading process, and that process."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        import os

        image = self.dataset[i]["image"]
        return image, self.dataset.scenes[0]._pid == os.getpid(), os.getpid()


def test_wavelength_units_tags_and_the_gdal_cache(files, tmp_path):
    """ENVI wavelengths in nm or µm by the header's unit (a unit that is no length warns and is ignored);
    GeoTIFF band tags; reads run with GDAL's block cache capped at RasterScene.cache_mb."""
    from terratorch_specmae.datamodules.hsi_files import RasterScene

    envi = files["envi"]
    header = envi["header"].read_text().splitlines()
    nm = [f"{w:.3f}" for w in envi["wavelengths"]]
    um = [f"{w / 1000:.6f}" for w in envi["wavelengths"]]
    for unit, values, expected in (("Nanometers", nm, envi["wavelengths"]), ("Micrometers", um, envi["wavelengths"]),
                                   ("Microns", nm, None)):  # fmt: skip
        folder = tmp_path / unit
        folder.mkdir()
        (folder / "s.img").write_bytes(envi["hsi"].read_bytes())
        text = [line for line in header if not line.startswith("wavelength")]
        (folder / "s.hdr").write_text("\n".join([*text, f"wavelength units = {unit}", "wavelength = {" + ", ".join(values) + "}"]) + "\n")
        if expected is None:  # nanometre values labelled micrometres would be bands at ~400,000 nm: refused
            with pytest.raises(ValueError, match=r"wavelengths must be in nm within 200–15000; .* they look like nanometres "
                               r"read as micrometres \(× 1000\): check the header's wavelength units"):  # fmt: skip
                open_scene(folder / "s.hdr")
            continue
        np.testing.assert_allclose(open_scene(folder / "s.hdr").wavelengths, expected, rtol=1e-6)
    (tmp_path / "Nanometers" / "s.hdr").write_text((tmp_path / "Nanometers" / "s.hdr").read_text().replace("Nanometers", "Unknown"))
    with pytest.warns(UserWarning, match="wavelength units 'Unknown' are not nanometers or micrometers"):
        assert open_scene(tmp_path / "Nanometers" / "s.hdr").wavelengths is None
    tagged = tmp_path / "tagged.tif"
    with rasterio.open(tagged, "w", driver="GTiff", height=4, width=5, count=3, dtype="float32") as dst:
        dst.write(np.ones((3, 4, 5), np.float32))
        for band, um in enumerate((0.49, 0.56, 0.665), start=1):
            dst.update_tags(band, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=str(um))
    assert open_scene(tagged).wavelengths == pytest.approx((490.0, 560.0, 665.0))
    seen = []
    original = rasterio.DatasetReader.read

    def spy(self, *args, **kwargs):
        seen.append(rasterio.env.get_gdal_config("GDAL_CACHEMAX"))
        return original(self, *args, **kwargs)

    rasterio.DatasetReader.read = spy
    try:
        open_scene(envi["header"]).read(slice(0, 2))
    finally:
        rasterio.DatasetReader.read = original
    assert seen == [RasterScene.cache_mb * 2**20]  # bytes: 64 MB


def test_label_nodata_split_values_index_overlap_and_no_validation(files, tmp_path):
    """A label raster's nodata reads as unlabelled; a split raster holds only 0/1/2; train and test lists
    of an index file are disjoint; label rasters share the HSI's georeference; val_fraction 0 means none."""
    envi = files["envi"]
    with rasterio.open(envi["labels"]) as src:
        labels, profile = src.read(1), src.profile
    with_nodata = tmp_path / "labels_nodata.tif"
    with rasterio.open(with_nodata, "w", **{**profile, "nodata": 255}) as dst:
        dst.write(np.where(labels == 0, 255, labels).astype(np.uint8), 1)
    plain = HSIPixelDataModule(str(envi["header"]), labels_path=str(envi["labels"]), val_fraction=0.0)
    nodata = HSIPixelDataModule(str(envi["header"]), labels_path=str(with_nodata), val_fraction=0.0)
    plain.setup("fit")
    nodata.setup("fit")
    assert "val" not in plain.datasets and plain.val_dataloader() == []
    assert len(nodata.datasets["train"]) == len(plain.datasets["train"]) == (labels > 0).sum() - len(plain.datasets["test"])
    shifted = tmp_path / "labels_shifted.tif"
    with rasterio.open(shifted, "w", **{**profile, "transform": profile["transform"] * rasterio.Affine.translation(2, 0)}) as dst:
        dst.write(labels, 1)
    with pytest.raises(ValueError, match="label raster .*labels_shifted.tif' is not on the HSI's grid"):
        HSIPixelDataModule(str(envi["header"]), labels_path=str(shifted)).setup("fit")
    hong = files["hong_berlin"]
    with pytest.raises(ValueError, match=r"split raster .*TestImage.mat' holds \[3, 4, .*\]; expected only \[0, 1, 2\]"):
        HSIPixelDataModule(str(hong["hsi"]), labels_path=str(hong["train"]), split_path=str(hong["test"])).setup("fit")
    gt = loadmat(files["berlin"]["gt"])["berlin_gt"]
    labelled = np.argwhere(gt > 0)
    overlapping = write_mat(tmp_path / "index_overlap.mat", {"b_train": labelled[:5], "b_test": labelled[3:9]})
    with pytest.raises(ValueError, match=r"2 pixels of .* are in both the train and the test list"):
        ouc_module(files["berlin"], split_path=str(overlapping)).setup("fit")
    pretrain = HSIPixelDataModule(str(envi["header"]), val_fraction=0.0)
    pretrain.setup("fit")
    assert "val" not in pretrain.datasets and len(pretrain.datasets["train"]) == 24 * 40


# ---- what cannot be read correctly is refused


def _envi_copy(envi: dict, folder, **changes) -> "Path":
    """The example ENVI scene with some header fields changed (``bands=60``, ``byte_order=1`` …)."""
    folder.mkdir()
    (folder / "s.img").write_bytes(envi["hsi"].read_bytes())
    lines = envi["header"].read_text().splitlines()
    for key, value in changes.items():
        field = key.replace("_", " ")
        lines = [f"{field} = {value}" if line.split("=")[0].strip() == field else line for line in lines]
    (folder / "s.hdr").write_text("\n".join(lines) + "\n")
    return folder / "s.hdr"


def test_an_envi_header_that_does_not_fit_its_data_file_is_refused(files, tmp_path):
    envi = files["envi"]  # 48 bands × 24 lines × 40 samples of uint16: 92,160 bytes
    more_bands = _envi_copy(envi, tmp_path / "more", bands=60)
    with pytest.raises(ValueError, match=r"header describes 60 bands × 24 lines × 40 samples of uint16 \(\+ 0 header bytes\) "
                       r"= 115,200 bytes, but the file holds 92,160: fewer bands or lines than the header names"):  # fmt: skip
        open_scene(more_bands)
    wider_type = _envi_copy(envi, tmp_path / "type", data_type=4)  # float32 instead of uint16
    with pytest.raises(ValueError, match=r"of float32 .* = 184,320 bytes, but the file holds 92,160.*wrong 'data type'"):
        open_scene(wider_type)
    assert open_scene(envi["header"]).shape == (48, 24, 40)


def test_float_data_read_with_the_wrong_byte_order_is_refused(files, tmp_path):
    folder = tmp_path / "float"
    folder.mkdir()
    reflectance = np.random.default_rng(0).uniform(0.02, 0.6, (8, 24, 40)).astype("<f4")
    reflectance.tofile(folder / "s.img")
    header = ["ENVI", "samples = 40", "lines = 24", "bands = 8", "header offset = 0", "file type = ENVI Standard",
              "data type = 4", "interleave = bsq", "byte order = 0"]  # fmt: skip
    (folder / "s.hdr").write_text("\n".join(header) + "\n")
    np.testing.assert_array_equal(open_scene(folder / "s.hdr").read(), reflectance)
    (folder / "s.hdr").write_text("\n".join(header[:-1] + ["byte order = 1"]) + "\n")  # says big-endian: wrong
    with pytest.raises(ValueError, match=r"s.img'?: \d+% of a sample of its values are NaN, infinite, beyond 1e\+10 .* — not "
                       r"reflectance or radiance\. Likely a wrong 'byte order' or 'data type'"):  # fmt: skip
        open_scene(folder / "s.hdr")


def test_wavelengths_in_the_wrong_unit_or_repeating_a_name_are_refused(files):
    envi = files["envi"]
    um = (envi["wavelengths"] / 1000).tolist()  # the option given in µm: "0.4nm" names, many the same
    module = HSIPixelDataModule(hsi_path=str(envi["hsi"]), labels_path=str(envi["labels"]), wavelengths=um, patch_size=5)
    with pytest.raises(ValueError, match=r"\(the wavelengths option\): wavelengths must be in nm within 200–15000; .* "
                       r"they look like micrometres given as nanometres: multiply by 1000"):  # fmt: skip
        module.setup("fit")
    same = [500.0] * 2 + list(envi["wavelengths"][2:])
    module = HSIPixelDataModule(hsi_path=str(envi["hsi"]), labels_path=str(envi["labels"]), wavelengths=same, patch_size=5)
    with pytest.raises(ValueError, match=r"1 wavelengths repeat a band name at 0.1 nm \(\['500.0nm'\]\)"):
        module.setup("fit")


@pytest.mark.parametrize("v73", [False, True])
def test_a_matlab_cube_stored_bands_first_is_refused_or_read_with_axis_order(files, tmp_path, v73):
    paths = files["h13"]
    cube = loadmat(paths["hsi"])[next(k for k in loadmat(paths["hsi"]) if not k.startswith("__"))]  # H × W × C
    wavelengths = np.linspace(380, 1050, cube.shape[2]).tolist()
    band_first = write_mat(tmp_path / f"band_first_{v73}.mat", {"HSI": np.ascontiguousarray(cube.transpose(2, 0, 1))}, v73=v73)
    module = HSIPixelDataModule(hsi_path=str(band_first), labels_path=str(paths["train"]), wavelengths=wavelengths, patch_size=5)
    with pytest.raises(ValueError, match=rf"{cube.shape[2]} wavelengths given for the {cube.shape[1]} bands .*read as "
                       rf"{cube.shape[1]} bands × {cube.shape[2]} rows.* it looks stored with another axis order \(set "
                       r"axis_order: CHW\)"):  # fmt: skip
        module.setup("fit")
    read = open_scene(band_first, axis_order="CHW").read()
    np.testing.assert_array_equal(read, cube.transpose(2, 0, 1).astype(np.float32))
    rows = open_scene(band_first, axis_order="CHW").read(slice(3, 9), slice(2, 7))
    np.testing.assert_array_equal(rows, cube[3:9, 2:7].transpose(2, 0, 1).astype(np.float32))


# ---- MATLAB files cut short or damaged in a download or copy

_MAT_FIX = r"download or copy it again and check that its size \(or checksum\) matches the source's\."


def _two_arrays(tmp_path, layout: str):
    """A .mat file of a label map and, last, an HSI cube: v5 compressed, v5 uncompressed, or v7.3 (HDF5)."""
    rng = np.random.default_rng(0)
    arrays = {"gt": rng.integers(0, 7, (20, 30)).astype(np.uint8), "hsi": rng.random((20, 30, 8))}
    path = tmp_path / f"whole_{layout}.mat"
    if layout == "v5_uncompressed":  # whosmat lists the arrays before the cut and stops there, silently
        savemat(path, arrays)
    else:
        write_mat(path, arrays, v73=layout == "v73")
    assert open_scene(f"{path}:hsi").shape == (8, 20, 30)
    return path


@pytest.mark.parametrize("layout", ["v5", "v5_uncompressed", "v73"])
def test_a_truncated_matlab_file_is_refused_naming_its_path_size_and_the_fix(tmp_path, layout):
    """A .mat file cut to half its bytes gives a ValueError naming the file, its size and how far its structure
    runs, and says to download or copy it again (not scipy's "could not read bytes", h5py's "Unable to
    synchronously open file", or "has no array 'hsi'" for a v5 file cut inside its last array)."""
    whole = _two_arrays(tmp_path, layout)
    cut = tmp_path / f"cut_{layout}.mat"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    message = (
        rf"MATLAB file '{re.escape(str(cut))}' looks truncated: it holds {cut.stat().st_size:,} bytes, but "
        rf".* runs to byte {whole.stat().st_size:,}\. .*{_MAT_FIX}"
    )
    for key in ("hsi", "gt"):
        with pytest.raises(ValueError, match=message):
            open_scene(f"{cut}:{key}")
    with pytest.raises(ValueError, match=message):
        HSIPixelDataModule(f"{cut}:hsi", labels_path=f"{whole}:gt").setup("fit")
    with pytest.raises(ValueError, match=message):
        HSIPixelDataModule(f"{whole}:hsi", labels_path=f"{cut}:gt").setup("fit")
    header_only = tmp_path / f"header_{layout}.mat"  # cut inside the 128-byte header / the 512-byte user block
    header_only.write_bytes(whole.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"MATLAB file '{re.escape(str(header_only))}' looks truncated: it holds 100 "
                       rf"bytes, but a MATLAB (v5 file starts with a 128-byte header|v7.3 \(HDF5\) file holds its HDF5 "
                       rf"data after byte 512)\. .*{_MAT_FIX}"):  # fmt: skip
        open_scene(header_only)


@pytest.mark.parametrize("layout", ["v5", "v73"])
def test_a_damaged_compressed_matlab_file_is_refused_naming_its_path(tmp_path, layout):
    """Bytes overwritten inside a compressed array: the reader's error, named as a corrupt file with its size."""
    whole = _two_arrays(tmp_path, layout)
    data = bytearray(whole.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    damaged = tmp_path / f"damaged_{layout}.mat"
    damaged.write_bytes(bytes(data))
    reader = "h5py" if layout == "v73" else "scipy.io"
    with pytest.raises(ValueError, match=rf"MATLAB file '{re.escape(str(damaged))}' looks corrupt: {reader} cannot "
                       rf"read it \(.+\); the file holds {len(data):,} bytes\. .*{_MAT_FIX}"):  # fmt: skip
        open_scene(f"{damaged}:hsi").read()

"""The synthetic HSI + DSM scene generator and pixel-centred patches."""

import numpy as np
import pytest

from terratorch_specmae.datamodules.pixel_patches import pixel_patches
from terratorch_specmae.datamodules.synthetic_hsi import CLASSES, make_scene, reference_spectra, wavelengths, write_scene


def test_scene_is_deterministic_plausible_and_redundant():
    a, b = make_scene(size=64, num_bands=32, seed=3), make_scene(size=64, num_bands=32, seed=3)
    assert np.array_equal(a.hsi, b.hsi) and np.array_equal(a.labels, b.labels)
    assert a.hsi.shape == (32, 64, 64) and a.hsi.dtype == np.float32 and a.dsm.shape == (64, 64)
    assert 0.0 <= a.hsi.min() and a.hsi.max() <= 1.0
    assert set(np.unique(a.classes)) == set(range(len(CLASSES)))  # every class appears
    flat = a.hsi.reshape(32, -1)
    corr = np.corrcoef(flat)
    assert np.median(np.diag(corr, 1)) > 0.98  # neighbouring bands nearly duplicate each other
    # physics: vegetation is bright in the NIR and dark in the red, water dark in the NIR
    wl = a.wavelengths
    nir, red = np.argmin(abs(wl - 900)), np.argmin(abs(wl - 670))
    trees, water = a.classes == CLASSES.index("trees"), a.classes == CLASSES.index("water")
    assert a.hsi[nir][trees].mean() > 3 * a.hsi[red][trees].mean()
    assert a.hsi[nir][water].mean() < 0.5 * a.hsi[nir][trees].mean()
    assert a.dsm[trees].mean() > a.dsm[a.classes == CLASSES.index("grass")].mean() + 5  # trees stand tall
    # sparse labels that agree with the classes, split into disjoint train / test
    labelled = a.labels > 0
    assert 0.03 < labelled.mean() < 0.15
    assert np.array_equal(a.labels[labelled] - 1, a.classes[labelled])
    assert set(np.unique(a.split[labelled])) == {1, 2} and np.all(a.split[~labelled] == 0)


def test_reference_spectra_are_smooth():
    spectra = reference_spectra(wavelengths(48))
    assert spectra.shape == (len(CLASSES), 48)
    # no step between neighbouring bands (14 nm apart) steeper than a real red edge (~0.006 per nm)
    assert np.abs(np.diff(spectra, axis=1)).max() < 0.12


def test_written_scene_is_georeferenced_and_named(tmp_path):
    import rasterio

    scene = make_scene(size=32, num_bands=8)
    paths = write_scene(scene, tmp_path)
    with rasterio.open(paths["hsi"]) as hsi, rasterio.open(paths["aux"]) as aux, rasterio.open(paths["labels"]) as lab:
        assert hsi.count == 8 and hsi.descriptions[0] == scene.band_names[0] and aux.descriptions == ("DSM",)
        assert hsi.crs.to_epsg() == 32615 and hsi.transform == aux.transform == lab.transform
        assert np.array_equal(hsi.read(), scene.hsi) and np.array_equal(lab.read(1), scene.labels)


def test_pixel_patches_are_centred_and_edge_padded():
    image = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    patches = pixel_patches(image, np.array([2, 0, 4]), np.array([3, 0, 5]), 3)
    assert patches.shape == (3, 2, 3, 3)
    assert np.array_equal(patches[0], image[:, 1:4, 2:5])
    assert np.array_equal(patches[1, :, 1, 1], image[:, 0, 0])  # centre pixel
    assert np.array_equal(patches[1, :, 0, 0], image[:, 0, 0])  # edge repeated
    assert np.array_equal(patches[2, :, 2, 2], image[:, 4, 5])
    with pytest.raises(ValueError, match="must be odd"):
        pixel_patches(image, np.array([0]), np.array([0]), 4)
    with pytest.raises(ValueError, match="outside the 5×6 image"):
        pixel_patches(image, np.array([5]), np.array([0]), 3)

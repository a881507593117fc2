"""Spectral indices by band name, on raw values recovered from standardised batches."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml

from terratorch_specmae.indices import SpectralIndices, denormalize, index_bands, standard_band_positions

ROOT = Path(__file__).resolve().parents[1]
LANDSAT = ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read().astype(np.float64)


def direct(raw: np.ndarray) -> np.ndarray:
    """NDVI, NDWI, NDBI straight from the file's bands (ETM+ order B1 B2 B3 B4 B5 B7)."""
    green, red, nir, swir1 = raw[1], raw[2], raw[3], raw[4]

    def nd(a, b):
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (a - b) / (a + b)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

    return np.stack([nd(nir, red), nd(green, nir), nd(swir1, nir)])


def test_indices_of_a_standardised_batch_equal_those_of_the_raw_file():
    data = yaml.safe_load((ROOT / "configs/specmae_seg.yaml").read_text())["data"]["init_args"]
    means, stds = data["means"], data["stds"]
    files = sorted((ROOT / "examples/data/olinda_l7/val/images").glob("*.tif"))[:3]
    raw = np.stack([read(f) for f in files])
    # what the model receives from TerraTorch's datamodule: (x - mean) / std per band
    batch = (torch.from_numpy(raw).float() - torch.tensor(means)[:, None, None]) / torch.tensor(stds)[:, None, None]
    maps = SpectralIndices(["NDVI", "NDWI", "NDBI"], LANDSAT)(denormalize(batch, means, stds))
    expected = np.stack([direct(r) for r in raw])
    np.testing.assert_allclose(maps.numpy(), expected, atol=1e-4)
    assert maps[:, 1].max() > 0.3 and maps[:, 0].max() > 0.3  # water and vegetation are both in these chips


def test_band_order_does_not_matter_when_names_follow_the_bands():
    raw = torch.rand(2, 6, 8, 8) * 200 + 1
    perm = [4, 0, 5, 2, 1, 3]
    a = SpectralIndices(["NDVI", "NDWI", "NDBI", "EVI"], LANDSAT)(raw)
    b = SpectralIndices(["NDVI", "NDWI", "NDBI", "EVI"], [LANDSAT[i] for i in perm])(raw[:, perm])
    torch.testing.assert_close(a, b)


def test_sentinel2_names_and_narrow_nir_fallback():
    s2 = standard_band_positions(["B02", "B03", "B04", "B08", "B8A", "B11"])
    assert s2["N"] == 3 and s2["N2"] == 4 and s2["S1"] == 5  # B08 is spyndex's N when present
    hls = standard_band_positions(["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"])
    assert hls["N"] == hls["N2"] == 3  # Landsat 8/9 and HLS: the narrow NIR is the NIR


def test_missing_band_policy_on_the_four_band_sentinel2_example():
    files = sorted((ROOT / "examples/data/sentinel2").glob("*.tif"))
    raw = torch.from_numpy(read(files[0]))[None].float()
    bands = ["B02", "B03", "B04", "B08"]
    with pytest.raises(ValueError, match=r"NDBI needs bands \['S1', 'N'\]; the bands .* lack S1 \(Short-wave Infrared"):
        SpectralIndices(["NDVI", "NDWI", "NDBI"], bands)
    with pytest.warns(UserWarning, match="NDBI needs bands"):
        indices = SpectralIndices(["NDVI", "NDWI", "NDBI"], bands, missing_bands="skip", scale=1e-4)
    assert indices.names == ["NDVI", "NDWI"]
    maps = indices(raw)
    assert maps.shape == (1, 2, 64, 64)
    nir, red = raw[0, 3].double(), raw[0, 2].double()
    torch.testing.assert_close(maps[0, 0].double(), (nir - red) / (nir + red), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="None of the indices"):
        SpectralIndices(["NDBI"], bands, missing_bands="skip")


def test_any_catalogue_index_by_name_with_its_constants():
    raw = torch.tensor([[0.05, 0.08, 0.06, 0.40]]).reshape(1, 4, 1, 1)  # blue, green, red, NIR reflectance
    evi = SpectralIndices(["EVI"], ["B02", "B03", "B04", "B08"])(raw)
    b, r, n = 0.05, 0.06, 0.40
    expected = 2.5 * (n - r) / (n + 6.0 * r - 7.5 * b + 1.0)
    assert abs(evi.item() - expected) < 1e-6
    assert set(index_bands("EVI")) == {"N", "R", "B"}


def test_zero_denominators_give_zero_not_nan():
    raw = torch.zeros(1, 6, 2, 2)
    maps = SpectralIndices(["NDVI", "NDWI", "NDBI"], LANDSAT)(raw)
    assert torch.equal(maps, torch.zeros_like(maps))


def test_bad_requests_are_clear_errors():
    with pytest.raises(ValueError, match=r"Unknown spectral index 'NDVII'.*Did you mean \['NDVI'"):
        SpectralIndices(["NDVII"], LANDSAT)
    with pytest.raises(ValueError, match="Unknown band name 'NIR'"):
        SpectralIndices(["NDVI"], ["RED", "NIR"])
    with pytest.raises(ValueError, match="missing_bands must be one of"):
        SpectralIndices(["NDVI"], LANDSAT, missing_bands="ignore")
    with pytest.raises(ValueError, match=r"Expected raw images \[B, 6, H, W\], got shape \(1, 4, 2, 2\)"):
        SpectralIndices(["NDVI"], LANDSAT)(torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match="Expected 6 means and stds"):
        denormalize(torch.zeros(1, 6, 2, 2), [0.0] * 4, [1.0] * 4)

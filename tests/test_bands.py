import pytest
from terratorch.datasets import HLSBands

from terratorch_specmae.bands import DEFAULT_BANDS, SENSOR_PRESETS, band_info, resolve_bands


def test_presets_and_defaults():
    assert resolve_bands() == DEFAULT_BANDS
    assert len(DEFAULT_BANDS) == 12 and "B10" not in DEFAULT_BANDS
    assert resolve_bands("landsat7") == SENSOR_PRESETS["landsat7"]
    assert resolve_bands(["B04", "B03", "B02"]) == ("B04", "B03", "B02")
    assert resolve_bands(in_chans=5) == tuple(f"band_{i}" for i in range(5))


def test_terratorch_enum_and_wavelength_names():
    assert resolve_bands([HLSBands.BLUE, HLSBands.NIR_NARROW]) == ("BLUE", "NIR_NARROW")
    assert band_info("652.5nm").wavelength_nm == 652.5
    assert band_info("B8A").common_name == "N2"


def test_wavelengths_increase_within_sentinel2_preset():
    wl = [band_info(b).wavelength_nm for b in SENSOR_PRESETS["sentinel2"]]
    assert wl == sorted(wl)


@pytest.mark.parametrize(
    ("bands", "in_chans", "message"),
    [
        (["B02", "B99"], None, "Unknown band name 'B99'"),
        (["B02", "B02"], None, "duplicates ['B02']"),
        ("sentinel3", None, "Unknown sensor preset 'sentinel3'"),
        (["B02", "B03"], 3, "in_chans=3 does not match the 2 bands"),
        ([], None, "bands is empty"),
    ],
)
def test_bad_band_lists_are_clear_errors(bands, in_chans, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        resolve_bands(bands, in_chans)


def test_auxiliary_channels_are_named_and_flagged():
    from terratorch_specmae.bands import band_info

    assert resolve_bands(["450.0nm", "VV", "DSM"]) == ("450.0nm", "VV", "DSM")
    assert band_info("VV").auxiliary and band_info("DSM").modality == "lidar"
    assert not band_info("B04").auxiliary and not band_info("652.5nm").auxiliary

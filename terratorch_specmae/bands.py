"""Band names, centre wavelengths and sensor presets.

Bands are always identified by name, never by position. Three kinds of names
are accepted:

* TerraTorch's generic (HLS) names: ``BLUE``, ``GREEN``, ``RED``, ``NIR_NARROW``,
  ``SWIR_1`` … (what Prithvi configs use);
* Sentinel-2 names ``B01`` … ``B12`` and ``B8A`` (zero-padded, so they never
  clash with Landsat's own numbering);
* wavelength names for hyperspectral bands, e.g. ``"652.5nm"``;
* auxiliary (non-optical) channels: SAR polarisations ``VV``, ``VH``, ``HH``, ``HV`` and
  LiDAR-derived ``DSM``, ``DEM``, ``LIDAR_INTENSITY`` (``Band.modality`` tells them apart).

A sensor preset name (``"sentinel2_l2a"``, ``"landsat7"`` …) expands to its list
of band names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    name: str
    wavelength_nm: float  # NaN for non-optical channels
    common_name: str  # spyndex's standard band key (e.g. "N" for NIR), "" if none
    modality: str = "optical"  # or "sar", "lidar"

    @property
    def auxiliary(self) -> bool:
        """True for channels of another modality than optical reflectance (SAR, LiDAR)."""
        return self.modality != "optical"


def _bands(*rows: tuple[str, float, str]) -> dict[str, Band]:
    return {name: Band(name, wl, common) for name, wl, common in rows}


GENERIC_BANDS = _bands(
    ("COASTAL_AEROSOL", 443.0, "A"),
    ("BLUE", 490.0, "B"),
    ("GREEN", 560.0, "G"),
    ("RED", 665.0, "R"),
    ("RED_EDGE_1", 705.0, "RE1"),
    ("RED_EDGE_2", 740.0, "RE2"),
    ("RED_EDGE_3", 783.0, "RE3"),
    ("NIR_BROAD", 842.0, "N"),
    ("NIR_NARROW", 865.0, "N2"),
    ("WATER_VAPOR", 945.0, "WV"),
    ("CIRRUS", 1375.0, ""),
    ("SWIR_1", 1610.0, "S1"),
    ("SWIR_2", 2190.0, "S2"),
    ("THERMAL_INFRARED_1", 10895.0, "T1"),
    ("THERMAL_INFRARED_2", 12005.0, "T2"),
)

SENTINEL2_BANDS = _bands(
    ("B01", 442.7, "A"),
    ("B02", 492.4, "B"),
    ("B03", 559.8, "G"),
    ("B04", 664.6, "R"),
    ("B05", 704.1, "RE1"),
    ("B06", 740.5, "RE2"),
    ("B07", 782.8, "RE3"),
    ("B08", 832.8, "N"),
    ("B8A", 864.7, "N2"),
    ("B09", 945.1, "WV"),
    ("B10", 1373.5, ""),
    ("B11", 1613.7, "S1"),
    ("B12", 2202.4, "S2"),
)

AUXILIARY_BANDS = {
    name: Band(name, float("nan"), "", modality)
    for name, modality in (
        ("VV", "sar"), ("VH", "sar"), ("HH", "sar"), ("HV", "sar"),
        ("DSM", "lidar"), ("DEM", "lidar"), ("LIDAR_INTENSITY", "lidar"),
    )
}

KNOWN_BANDS: dict[str, Band] = {**GENERIC_BANDS, **SENTINEL2_BANDS, **AUXILIARY_BANDS}

SENSOR_PRESETS: dict[str, tuple[str, ...]] = {
    # the 13 bands of Sentinel-2 L1C, in wavelength order
    "sentinel2": ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"),
    # L2A / BigEarthNet: no cirrus band (12 bands, 4 spectral groups of 3)
    "sentinel2_l2a": ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"),
    # Landsat 7 ETM+ reflective bands B1-B5, B7
    "landsat7": ("BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"),
    # Landsat 8/9 OLI bands B1-B7
    "landsat8": ("COASTAL_AEROSOL", "BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"),
    "landsat9": ("COASTAL_AEROSOL", "BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"),
    # Harmonized Landsat Sentinel-2, as Prithvi uses it
    "hls": ("BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"),
}

DEFAULT_BANDS = SENSOR_PRESETS["sentinel2_l2a"]


def sensors_of(bands: Sequence[str]) -> list[str]:
    """The sensor presets that hold every one of ``bands`` (e.g. ``["landsat8", "landsat9"]``), in table order."""
    wanted = set(bands)
    return [name for name, preset in SENSOR_PRESETS.items() if wanted and wanted <= set(preset)]

_WAVELENGTH_NAME = re.compile(r"^(\d+(?:\.\d+)?)nm$")


def band_info(name: str) -> Band:
    """The :class:`Band` of a band name; raises ``ValueError`` for unknown names."""
    if name in KNOWN_BANDS:
        return KNOWN_BANDS[name]
    match = _WAVELENGTH_NAME.match(name)
    if match:
        return Band(name, float(match.group(1)), "")
    msg = (
        f"Unknown band name {name!r}. Expected a TerraTorch/HLS name ({', '.join(GENERIC_BANDS)}), "
        f"a Sentinel-2 name ({', '.join(SENTINEL2_BANDS)}), a wavelength name such as '652.5nm' "
        f"or an auxiliary channel ({', '.join(AUXILIARY_BANDS)})."
    )
    raise ValueError(msg)


UNNAMED_BAND = re.compile(r"^band_\d+$")  # the names resolve_bands gives bands known only by in_chans


def band_list(names: Sequence[str], limit: int = 12) -> str:
    """``names`` for a message: the whole list up to ``limit`` names, else the first and last three
    and the count (a hyperspectral sensor has hundreds)."""
    names = list(names)
    if len(names) <= limit:
        return str(names)
    return f"[{', '.join(map(repr, names[:3]))}, …, {', '.join(map(repr, names[-3:]))}] ({len(names)} bands)"


def check_unique_bands(names: Sequence[str], what: str = "Band names") -> None:
    """Raise a ``ValueError`` naming each repeated band and its positions (every datamodule and model
    taking ``bands`` goes through this, directly or through :func:`resolve_bands`)."""
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        positions.setdefault(name, []).append(i)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if repeated:
        raise ValueError(
            f"{what} must be unique, got duplicates {list(repeated)} at positions {repeated} in {list(names)}."
        )


def resolve_bands(bands: str | Sequence[str] | None = None, in_chans: int | None = None) -> tuple[str, ...]:
    """Turn ``bands`` (a list of names, a sensor preset or ``None``) into a validated tuple of names.

    With neither ``bands`` nor ``in_chans`` the Sentinel-2 L2A preset is used. With only
    ``in_chans`` the bands are unnamed (``"band_0"`` …) and name-based features are unavailable.
    """
    if bands is None:
        if in_chans is None:
            return DEFAULT_BANDS
        if in_chans < 1:
            raise ValueError(f"in_chans must be a positive number of bands, got {in_chans}.")
        return tuple(f"band_{i}" for i in range(in_chans))
    if isinstance(bands, str):
        if bands not in SENSOR_PRESETS:
            msg = f"Unknown sensor preset {bands!r}; expected one of {sorted(SENSOR_PRESETS)} or a list of band names."
            raise ValueError(msg)
        names = SENSOR_PRESETS[bands]
    else:
        names = tuple(getattr(b, "value", b) for b in bands)  # accept TerraTorch's HLSBands enum members
    if not names:
        raise ValueError("bands is empty: expected at least one band name.")
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"Band names must be strings, got {name!r} of type {type(name).__name__}.")
        if not UNNAMED_BAND.match(name):  # "band_3": what in_chans gave; kept when a model is rebuilt or saved
            band_info(name)
    check_unique_bands(names)
    if in_chans is not None and in_chans != len(names):
        msg = f"in_chans={in_chans} does not match the {len(names)} bands given: {list(names)}."
        raise ValueError(msg)
    return tuple(names)

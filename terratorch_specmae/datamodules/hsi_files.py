"""Hyperspectral scenes, auxiliary rasters, label rasters and split files as HSI benchmarks ship them.

:func:`open_scene` gives a :class:`Scene`: a ``[C, H, W]`` raster read in windows, with its band
wavelengths and georeference where the file has them.

* **GeoTIFF and every other GDAL raster, ENVI (``.hdr`` + raw) included**, through rasterio: read
  in windows, never whole. Wavelengths come from the band metadata GDAL exposes (ENVI's
  ``wavelength`` and ``wavelength units`` header fields, or a band's ``wavelength`` /
  ``CENTRAL_WAVELENGTH_UM`` tag); the nodata value reads as NaN.
* **MATLAB ``.mat`` v5/v7** through ``scipy.io``: the format has no windowed access, so the
  variable is read whole (a v5 variable holds at most 2 GB).
* **MATLAB ``.mat`` v7.3** (HDF5) through h5py: read in windows. MATLAB stores arrays column-major,
  so h5py sees an ``H × W × C`` array as ``[C, W, H]``; it is transposed back here.

A ``.mat`` file's variable is named after the path, ``"data_DSM_HR.mat:DSM"``, or is the file's
only array. MATLAB arrays are ``H × W`` or ``H × W × C`` (rows, columns, bands), as every HSI
benchmark distributes them (SS-MAE's ``berlin_hsi.mat``, Hong et al.'s ``data_HS_LR.mat``, the
``HSI.mat`` / ``TRLabel.mat`` layout); a cube stored bands first is read with ``axis_order="CHW"``.

What cannot be read correctly is refused rather than read wrong: an ENVI data file whose size is
not what its header's bands × lines × samples × data type (+ header offset) make (a header naming
more bands than the file holds, or the wrong data type), float data whose values are mostly
non-finite or beyond 1e10 (a wrong ``byte order``), and wavelengths outside 200–15,000 nm or
repeating a band name (a unit mistake, named) — :func:`check_wavelengths` —, and a ``.mat`` file shorter
than its own structure says (a download or copy cut short) or that its reader cannot parse, named with its path
and size. :func:`read_pixel_index` reads SS-MAE-style split files: ``N × 2`` arrays of 0-based ``(row, column)``
pixel coordinates.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np

#: Extensions read as MATLAB files; everything else goes to rasterio (GDAL).
MAT_SUFFIX = ".mat"
#: Extensions of an ENVI header's data file, tried in order after the bare name.
ENVI_DATA_SUFFIXES = (".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".sli")
_MAT_KEY = re.compile(r"^(?P<path>.+\.mat):(?P<key>[A-Za-z]\w*)$", re.IGNORECASE)
_MICROMETRES = {"micrometers", "micrometer", "micrometre", "micrometres", "microns", "micron", "um", "µm"}
_NANOMETRES = {"nanometers", "nanometer", "nanometre", "nanometres", "nm"}
WAVELENGTH_RANGE_NM = (200.0, 15_000.0)  # UV to thermal infrared: any optical band of an EO sensor
AXIS_ORDERS = ("HWC", "CHW")
GARBLED_LIMIT = 1e10  # float reflectance / radiance never comes near this; a wrong byte order often does
MAT_DAMAGE_FIX = (
    "An interrupted or faulty download or copy leaves such files: download or copy it again and check that its "
    "size (or checksum) matches the source's."
)
_MI_COMPRESSED = 15  # MATLAB v5 data type of a zlib-compressed element (not padded to 8 bytes)


def wavelength_name(nm: float) -> str:
    """The band name of a wavelength in nm, as :mod:`terratorch_specmae.bands` reads it (``"652.5nm"``)."""
    return f"{round(float(nm), 1)}nm"


def check_wavelengths(values, where: str) -> None:
    """Wavelengths in nm must lie in 200–15,000 nm and give distinct band names; the error names the likely
    unit mistake (nm read as µm, or µm given as nm)."""
    values = [float(v) for v in values]
    low, high = WAVELENGTH_RANGE_NM
    outside = [v for v in values if not low <= v <= high]
    if outside:
        if all(low * 1000 <= v <= high * 1000 for v in values):
            hint = "they look like nanometres read as micrometres (× 1000): check the header's wavelength units"
        elif all(low / 1000 <= v <= high / 1000 for v in values):
            hint = "they look like micrometres given as nanometres: multiply by 1000"
        else:
            hint = "check the values and their unit"
        raise ValueError(
            f"{where}: wavelengths must be in nm within {low:g}–{high:g}; got {outside[:3]}{' …' if len(outside) > 3 else ''} "
            f"({len(outside)} of {len(values)} outside); {hint}."
        )
    names = [wavelength_name(v) for v in values]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"{where}: {len(values) - len(set(names))} wavelengths repeat a band name at 0.1 nm ({repeated[:5]}); "
            "expected one distinct centre wavelength per band (a unit mistake makes them collapse)."
        )


def split_mat_key(path: str | Path) -> tuple[Path, str | None]:
    """``("f.mat:key")`` → ``(Path("f.mat"), "key")``; any other path → ``(path, None)``."""
    match = _MAT_KEY.match(str(path))
    if match:
        return Path(match["path"]), match["key"]
    return Path(path), None


class Scene:
    """A ``[C, H, W]`` raster read in windows (see the module docstring).

    Attributes: ``path``, ``shape`` (C, H, W), ``wavelengths`` (nm per band, or None),
    ``band_names`` (the file's band descriptions, or None), ``crs``, ``transform`` (None where the
    file has no georeference, as in ``.mat`` files).
    """

    path: Path
    shape: tuple[int, int, int]
    wavelengths: tuple[float, ...] | None = None
    band_names: tuple[str, ...] | None = None
    crs = None
    transform = None
    #: whether :meth:`read` reads only the window from disk (False: the file was read whole)
    windowed: bool = True

    def read(self, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """The ``[C, h, w]`` float32 window ``rows`` × ``cols`` (nodata → NaN)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the open file (the scene reopens it on the next read)."""

    def __getstate__(self) -> dict:  # DataLoader workers get the path and reopen the file (a v5 array travels)
        self.close()
        return self.__dict__.copy()

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, shape={self.shape})"


def _window(rows: slice, cols: slice, height: int, width: int) -> tuple[int, int, int, int]:
    r0, r1, _ = rows.indices(height)
    c0, c1, _ = cols.indices(width)
    return r0, r1, c0, c1


class RasterScene(Scene):
    """A GDAL raster (GeoTIFF, ENVI, …) through rasterio.

    Reads run with GDAL's block cache capped at ``cache_mb`` (GDAL's default, 5 % of RAM, would
    otherwise fill with a large scene's blocks as it is read window by window)."""

    cache_mb: int = 64

    def __init__(self, path: Path) -> None:
        import rasterio

        self.path, self._src, self._pid = path, None, None
        try:
            src = self._open()
        except rasterio.errors.RasterioIOError as error:
            raise ValueError(f"Cannot read {str(path)!r} as a raster (GeoTIFF, ENVI .hdr/raw, …): {error}") from error
        self.shape = (src.count, src.height, src.width)
        self.crs, self.transform, self.nodata = src.crs, src.transform, src.nodata
        descriptions = tuple(src.descriptions)
        self.band_names = descriptions if all(descriptions) else None
        self.wavelengths = raster_wavelengths(src)
        if src.driver == "ENVI":
            self._check_envi_size(src)
        if np.dtype(src.dtypes[0]).kind == "f":
            self._check_plausible()

    def _check_envi_size(self, src) -> None:
        """The data file must hold exactly what the header describes (GDAL reads zeros past its end)."""
        offset = int(float(src.tags(ns="ENVI").get("header_offset", 0) or 0))
        itemsize = np.dtype(src.dtypes[0]).itemsize
        expected = offset + src.count * src.height * src.width * itemsize
        actual = self.path.stat().st_size
        if actual != expected:
            raise ValueError(
                f"ENVI file {str(self.path)!r}: its header describes {src.count} bands × {src.height} lines × "
                f"{src.width} samples of {src.dtypes[0]} (+ {offset} header bytes) = {expected:,} bytes, but the file "
                f"holds {actual:,}: {'fewer bands or lines than the header names' if actual < expected else 'more data than the header names'}, "
                "or a wrong 'data type'. Fix the header's bands / lines / samples / data type."
            )

    def _check_plausible(self) -> None:
        """Float data that are mostly non-finite or huge were read with a wrong byte order or data type."""
        sample = self.read(slice(0, min(self.height, 64)), slice(0, min(self.width, 64)))[: min(self.shape[0], 8)]
        if self.nodata is not None:
            sample = sample[~np.isnan(sample)]
        if sample.size == 0:
            return
        with np.errstate(invalid="ignore", over="ignore"):
            magnitude = np.abs(sample)
            garbled = ~np.isfinite(sample) | (magnitude > GARBLED_LIMIT) | ((magnitude > 0) & (magnitude < 1 / GARBLED_LIMIT**2))
        if garbled.mean() > 0.01:
            raise ValueError(
                f"{str(self.path)!r}: {garbled.mean():.0%} of a sample of its values are NaN, infinite, beyond "
                f"{GARBLED_LIMIT:g} or below {1 / GARBLED_LIMIT**2:g} in size — not reflectance or radiance. Likely a wrong 'byte order' or 'data type' in its "
                "header (ENVI) or metadata."
            )

    def _open(self):
        import rasterio

        if self._src is None or self._pid != os.getpid():  # a forked DataLoader worker opens its own handle
            self._src, self._pid = rasterio.open(self.path), os.getpid()
        return self._src

    def read(self, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        import rasterio
        from rasterio.windows import Window

        r0, r1, c0, c1 = _window(rows, cols, self.height, self.width)
        with rasterio.Env(GDAL_CACHEMAX=self.cache_mb * 2**20):  # rasterio hands GDAL bytes
            data = self._open().read(window=Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float32)
        if self.nodata is not None:
            data[data == np.float32(self.nodata)] = np.nan
        return data

    def close(self) -> None:
        if self._src is not None and self._pid == os.getpid():
            self._src.close()
        self._src = None


def _micrometres_or_nanometres(values: list[float], units: str | None, path: Path) -> tuple[float, ...] | None:
    """Wavelengths in nm, or None (with a warning) when the unit is not a length (ENVI's ``Unknown``, ``Index``)."""
    unit = (units or "").strip().lower()
    if unit in _MICROMETRES or (not unit and max(values) < 30.0):  # no unit given: 0.4–2.5 reads as µm
        return tuple(round(v * 1000.0, 4) for v in values)
    if unit in _NANOMETRES or not unit:
        return tuple(values)
    warnings.warn(
        f"{str(path)!r}: wavelength units {units!r} are not nanometers or micrometers; the file's wavelengths are "
        "ignored (give the datamodule's `wavelengths` option).",
        stacklevel=3,
    )
    return None


def raster_wavelengths(src) -> tuple[float, ...] | None:
    """Band centre wavelengths in nm from a rasterio dataset's metadata, or None (a header that lists
    a wrong number of them, or no length unit, warns and gives None: the ``wavelengths`` option can then name them)."""
    envi = src.tags(ns="ENVI")
    if "wavelength" in envi:  # the header's list: "{400.0, 410.0, …}"
        values = [float(v) for v in re.split(r"[,\s]+", envi["wavelength"].strip("{} ")) if v]
        if len(values) != src.count:
            warnings.warn(
                f"{src.name!r}: the ENVI header lists {len(values)} wavelengths for {src.count} bands; they are ignored "
                "(give the datamodule's `wavelengths` option).",
                stacklevel=3,
            )
            return None
        nm = _micrometres_or_nanometres(values, envi.get("wavelength_units"), Path(src.name))
        if nm is not None:
            check_wavelengths(nm, f"{src.name!r} (its header's wavelengths, units {envi.get('wavelength_units')!r})")
        return nm
    per_band = []
    for band in range(1, src.count + 1):
        tags, imagery = src.tags(band), src.tags(band, ns="IMAGERY")
        if "CENTRAL_WAVELENGTH_UM" in imagery:
            per_band.append(float(imagery["CENTRAL_WAVELENGTH_UM"]) * 1000.0)
        elif "wavelength" in tags:
            value = _micrometres_or_nanometres([float(tags["wavelength"])], tags.get("wavelength_units"), Path(src.name))
            if value is None:
                return None
            per_band.append(value[0])
        else:
            return None
    check_wavelengths(per_band, f"{src.name!r} (its bands' wavelength tags)")
    return tuple(per_band)


class MatScene(Scene):
    """One variable of a MATLAB file (``H × W`` or ``H × W × C``), v5/v7 or v7.3."""

    def __init__(self, path: Path, key: str | None, axis_order: str = "HWC") -> None:
        import h5py

        if axis_order not in AXIS_ORDERS:
            raise ValueError(f"axis_order must be one of {AXIS_ORDERS}, got {axis_order!r}.")
        self.path, self._file, self._array, self._pid = path, None, None, None
        self.axis_order = axis_order
        self.v73 = h5py.is_hdf5(path)
        variables = mat_variables(path)
        if key is None:
            if len(variables) != 1:
                raise ValueError(
                    f"{str(path)!r} holds {len(variables)} arrays {sorted(variables)}; name the one to read "
                    f"as '{path}:<name>'."
                )
            key = next(iter(variables))
        if key not in variables:
            raise ValueError(f"{str(path)!r} has no array {key!r}; it holds {sorted(variables)}.")
        self.key, shape = key, variables[key]
        if len(shape) not in (2, 3):
            raise ValueError(
                f"{str(path)!r}:{key} has shape {shape}; expected H × W or H × W × C (rows, columns, bands)."
            )
        if len(shape) == 3 and axis_order == "CHW":
            self.shape = tuple(shape)
        else:
            height, width = shape[:2]
            self.shape = (shape[2] if len(shape) == 3 else 1, height, width)
        self.windowed = self.v73

    def read(self, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        r0, r1, c0, c1 = _window(rows, cols, self.height, self.width)
        if self.v73:
            if self._file is None or self._pid != os.getpid():  # a forked DataLoader worker opens its own handle
                self._file, self._pid = open_hdf5(self.path), os.getpid()
            try:
                data = self._file[self.key]
                if data.ndim == 3 and self.axis_order == "CHW":  # MATLAB C × H × W: h5py sees [W, H, C]
                    return np.asarray(data[c0:c1, r0:r1, :], dtype=np.float32).transpose(2, 1, 0)
                window = data[c0:c1, r0:r1] if data.ndim == 2 else data[:, c0:c1, r0:r1]  # [(C,) W, H]
                window = np.asarray(window, dtype=np.float32)
            except OSError as error:  # a chunk or an object header that does not decode
                raise corrupt_mat_error(self.path, "h5py", error) from error
            return window.T[None] if window.ndim == 2 else window.transpose(0, 2, 1)
        if self._array is None:
            array = load_mat_v5(self.path, self.key)
            if array.ndim == 3 and self.axis_order == "CHW":
                array = array.transpose(1, 2, 0)
            self._array = array[:, :, None] if array.ndim == 2 else array  # H × W × C
        return np.ascontiguousarray(self._array[r0:r1, c0:c1].transpose(2, 0, 1), dtype=np.float32)

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None



def open_scene(path: str | Path, axis_order: str = "HWC") -> Scene:
    """A :class:`Scene` over ``path`` (``"file.mat:name"`` picks a MATLAB variable; ``axis_order`` ``"CHW"``
    reads a MATLAB cube stored bands first)."""
    path, key = split_mat_key(path)
    if not path.is_file():
        raise ValueError(f"Raster not found: expected a raster or .mat file at {str(path)!r}.")
    if path.suffix.lower() == MAT_SUFFIX:
        return MatScene(path, key, axis_order)
    if path.suffix.lower() == ".hdr":  # GDAL opens an ENVI file by its data file, beside the header
        return RasterScene(envi_data_file(path))
    return RasterScene(path)


def envi_data_file(header: Path) -> Path:
    """The raw file an ENVI header describes: the same name without ``.hdr``, or with one of the usual extensions."""
    candidates = [header.with_suffix("")] + [header.with_suffix(ext) for ext in ENVI_DATA_SUFFIXES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = ", ".join(c.name for c in candidates)
    raise ValueError(f"ENVI header {str(header)!r} has no data file beside it; expected one of: {names}.")


def read_class_raster(
    path: str | Path,
    reference: Scene,
    what: str = "label raster",
    allowed: set[int] | None = None,
    unlabelled: int | None = None,
) -> np.ndarray:
    """An ``H × W`` integer raster (class labels, 0 = unlabelled; or a 1/2 split) on ``reference``'s grid
    (size, and georeference where both have one). The raster's nodata value, and the value ``unlabelled``,
    read as 0; ``allowed`` restricts the values."""
    scene = open_scene(path)
    try:
        if scene.shape[0] != 1 or scene.shape[1:] != reference.shape[1:]:
            raise ValueError(
                f"{what} {str(path)!r} has shape {scene.shape[0]} × {scene.height} × {scene.width} (bands × rows × "
                f"columns); expected one band of {reference.height} × {reference.width}, the scene's size."
            )
        if scene.transform is not None and reference.transform is not None and (
            scene.transform != reference.transform or scene.crs != reference.crs
        ):
            raise ValueError(
                f"{what} {str(path)!r} is not on the HSI's grid: expected {reference.crs}, "
                f"{tuple(reference.transform)[:6]}; got {scene.crs}, {tuple(scene.transform)[:6]}."
            )
        values = scene.read()[0]
        nodata = getattr(scene, "nodata", None)
    finally:
        scene.close()
    if nodata is not None:
        values = np.where(np.isnan(values), 0, values)  # nodata: unlabelled
    if unlabelled is not None:
        values = np.where(values == unlabelled, 0, values)
    if not np.isfinite(values).all() or (values != np.round(values)).any() or values.min() < 0:
        raise ValueError(f"{what} {str(path)!r} holds values that are not non-negative integers (or NaN).")
    values = values.astype(np.int64)
    if allowed is not None and not set(np.unique(values).tolist()) <= allowed:
        found = sorted(set(np.unique(values).tolist()) - allowed)[:5]
        raise ValueError(f"{what} {str(path)!r} holds {found}; expected only {sorted(allowed)}.")
    return values


def truncated_mat_error(path: Path, detail: str) -> ValueError:
    """The error for a MATLAB file shorter than its structure says; ``detail`` says how far the structure runs."""
    return ValueError(
        f"MATLAB file {str(path)!r} looks truncated: it holds {path.stat().st_size:,} bytes, but {detail}. "
        f"{MAT_DAMAGE_FIX}"
    )


def corrupt_mat_error(path: Path, reader: str, error: Exception) -> ValueError:
    """The error for a MATLAB file of the right length that ``reader`` cannot parse."""
    return ValueError(
        f"MATLAB file {str(path)!r} looks corrupt: {reader} cannot read it ({type(error).__name__}: {error}); "
        f"the file holds {path.stat().st_size:,} bytes. {MAT_DAMAGE_FIX}"
    )


def check_mat_length(path: Path) -> bool:
    """Whether ``path`` starts with a MATLAB v5 header (version 0x0100 and the endian mark in bytes 124–127);
    raises when the file ends before its last data element does (each element's tag gives its length), or
    inside the header, or is a v7.3 header without its HDF5 part (called where h5py found none). Other files
    pass (scipy then names what they are not)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(128)
        if header.startswith(b"MATLAB 7.3"):  # no HDF5 signature after the 512-byte user block
            raise truncated_mat_error(path, "a MATLAB v7.3 (HDF5) file holds its HDF5 data after byte 512")
        if len(header) < 128:
            if header.startswith(b"MATLAB"):
                raise truncated_mat_error(path, "a MATLAB v5 file starts with a 128-byte header")
            return False
        endian = {b"IM": "<", b"MI": ">"}.get(header[126:128])
        if endian is None or struct.unpack(endian + "H", header[124:126])[0] != 0x0100:
            return False
        position = 128
        while position < size:
            f.seek(position)
            tag = f.read(8)
            if len(tag) < 8:
                if tag.strip(b"\0"):
                    raise truncated_mat_error(
                        path, f"the tag of the array stored from byte {position:,} runs to byte {position + 8:,}"
                    )
                break  # trailing zero padding
            kind, length = struct.unpack(endian + "II", tag)
            if kind >> 16:  # small data element: the data sit in the tag
                position += 8
                continue
            end = position + 8 + length
            if end > size:
                raise truncated_mat_error(path, f"the array stored from byte {position:,} runs to byte {end:,}")
            position = end + (0 if kind == _MI_COMPRESSED else -length % 8)
    return True


def open_hdf5(path: Path):
    """``h5py.File(path, "r")``; a truncated or unreadable file is a ValueError naming the path and what to do."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as error:
        if isinstance(error, PermissionError) or re.search(r"\block", str(error)):  # the file may be fine
            raise
        found = re.search(r"truncated file: .*stored_eof = (\d+)", str(error))
        if found:
            detail = f"its HDF5 (v7.3) structure runs to byte {int(found[1]):,}"
            raise truncated_mat_error(path, detail) from error
        raise corrupt_mat_error(path, "h5py", error) from error


def load_mat_v5(path: Path, key: str) -> np.ndarray:
    """Array ``key`` of a MATLAB v5/v7 file (checked by :func:`check_mat_length`, through :func:`mat_variables`)
    through scipy; data it cannot parse are a ValueError naming the file."""
    from scipy.io import loadmat

    try:
        return loadmat(path, variable_names=[key])[key]
    except MemoryError:
        raise
    except Exception as error:  # scipy raises several types (OSError, ValueError, zlib.error …) for damaged data
        raise corrupt_mat_error(path, "scipy.io", error) from error


def mat_variables(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Array name → MATLAB shape (``H, W[, C]``) in a MATLAB file (v5/v7 or v7.3), without reading the arrays."""
    import h5py

    path = Path(path)
    if h5py.is_hdf5(path):
        with open_hdf5(path) as f:
            return {
                name: tuple(reversed(item.shape))  # column-major: h5py's shape is MATLAB's reversed
                for name, item in f.items()
                if isinstance(item, h5py.Dataset) and not name.startswith("#")
            }
    is_v5 = check_mat_length(path)
    from scipy.io import whosmat

    try:
        listed = whosmat(path)
    except Exception as error:  # scipy raises several types for files that are not MATLAB files
        if is_v5:  # a MATLAB v5 header, whole, yet unreadable
            raise corrupt_mat_error(path, "scipy.io", error) from error
        raise ValueError(f"Cannot read {str(path)!r} as a MATLAB .mat file: {error}") from error
    return {name: tuple(shape) for name, shape, kind in listed if kind not in ("struct", "cell", "char")}


def mat_keys(path: str | Path) -> list[str]:
    """The array names in a MATLAB file (v5/v7 or v7.3)."""
    return sorted(mat_variables(path))


def read_pixel_index(path: str | Path, key: str, shape: tuple[int, int]) -> np.ndarray:
    """``[N, 2]`` 0-based ``(row, column)`` pixels of array ``key`` in a MATLAB file (SS-MAE's ``*_index.mat``)."""
    import h5py

    path = Path(path)
    keys = mat_keys(path)
    if key not in keys:
        raise ValueError(f"{str(path)!r} has no array {key!r}; it holds {keys}.")
    if h5py.is_hdf5(path):
        with open_hdf5(path) as f:
            try:
                index = np.asarray(f[key]).T
            except OSError as error:  # a chunk that does not decompress
                raise corrupt_mat_error(path, "h5py", error) from error
    else:
        index = load_mat_v5(path, key)
    if index.ndim != 2 or index.shape[1] != 2:
        raise ValueError(f"{str(path)!r}:{key} has shape {index.shape}; expected N × 2 (row, column) pixel coordinates.")
    index = index.astype(np.int64)
    height, width = shape
    outside = (index[:, 0] < 0) | (index[:, 0] >= height) | (index[:, 1] < 0) | (index[:, 1] >= width)
    if outside.any():
        row, col = index[np.argmax(outside)]
        raise ValueError(
            f"{str(path)!r}:{key} has {int(outside.sum())} pixels outside the {height} × {width} scene (first: "
            f"row {row}, column {col}); expected 0-based (row, column) coordinates."
        )
    return index

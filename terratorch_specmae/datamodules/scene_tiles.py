"""Sliding-window prediction of a scene of any size, reading one window at a time.

``SceneTilesDataModule`` cuts a GeoTIFF into overlapping ``crop`` × ``crop`` tiles (every
``stride`` pixels, the last row/column of tiles aligned to the scene's edge) and reads each
tile's window from disk when the loader asks for it; :class:`~terratorch_specmae.callbacks.SceneWriter`
writes each tile's *kept* part into the output GeoTIFF as its batch is predicted. Nothing holds
the whole scene, so memory depends on ``crop`` and ``batch_size``, not on the scene's size.

Each output pixel comes from exactly one tile: where two tiles overlap, the boundary is the
middle of the overlap, so every pixel is predicted from a tile in which it lies at least
``(crop - stride) / 2`` pixels from the tile's border (except at the scene's own edges). A
scene smaller than ``crop`` is edge-padded to one tile.

Subclassed from ``LightningDataModule`` rather than TerraTorch's generic datamodules because
those read a whole file per sample (``terratorch predict`` then holds the scene and, with its
``tiled_inference``, every crop's output).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from torch.utils.data import DataLoader, Dataset

from terratorch_specmae.bands import check_unique_bands
from terratorch_specmae.validity import check_stds


@dataclass(frozen=True)
class Tile:
    """A tile's top-left corner in the scene and the part of the scene it writes (``keep``)."""

    row: int
    col: int
    keep: Window


def tile_starts(length: int, crop: int, stride: int) -> list[int]:
    """Start offsets of tiles along an axis of ``length`` pixels: every ``stride``, the last at the edge."""
    if crop < 1 or not 0 < stride <= crop:
        raise ValueError(f"Need crop >= 1 and 0 < stride <= crop (else pixels go unpredicted), got crop={crop}, stride={stride}.")
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, stride))
    if starts[-1] != length - crop:
        starts.append(length - crop)
    return starts


def keep_spans(starts: Sequence[int], crop: int, length: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of the scene each tile writes: neighbours split their overlap in the middle."""
    bounds = [0] + [(starts[i + 1] + starts[i] + crop) // 2 for i in range(len(starts) - 1)] + [length]
    return list(pairwise(bounds))


def missing_values(data: np.ndarray, *nodata: float | None) -> np.ndarray:
    """Bool mask of ``data``: True where a value is NaN, ±inf or equals one of the ``nodata`` values
    (``None`` and non-finite ones skipped) — the raster's own nodata tag and a user's ``nodata``."""
    invalid = ~np.isfinite(data)
    for value in nodata:
        if value is not None and np.isfinite(value):
            invalid |= data == value
    return invalid


def scene_tiles(height: int, width: int, crop: int, stride: int) -> list[Tile]:
    """Tiles covering a ``height`` × ``width`` scene, row-major; their ``keep`` windows partition it."""
    rows, cols = tile_starts(height, crop, stride), tile_starts(width, crop, stride)
    row_keep, col_keep = keep_spans(rows, crop, height), keep_spans(cols, crop, width)
    return [
        Tile(r, c, Window(c0, r0, c1 - c0, r1 - r0))
        for r, (r0, r1) in zip(rows, row_keep)
        for c, (c0, c1) in zip(cols, col_keep)
    ]


class SceneTileDataset(Dataset):
    """Normalised ``crop`` × ``crop`` tiles of one scene, read window by window.

    Samples are ``{"image": [C, h, w]}`` (``[C, T, h, w]`` with ``dates`` > 1); missing pixels
    (the file's nodata value, ``nodata``, NaN) are set to the band mean, i.e. 0 after
    normalisation; :meth:`valid` says which pixels they were.
    """

    def __init__(
        self,
        path: Path,
        tiles: Sequence[Tile],
        crop: int,
        band_indexes: Sequence[int],
        means: np.ndarray,
        stds: np.ndarray,
        dates: int = 1,
        temporal_channel_major: bool = False,
        nodata: float | None = None,
    ) -> None:
        self.path, self.tiles, self.crop = Path(path), list(tiles), crop
        self.band_indexes, self.dates, self.temporal_channel_major = list(band_indexes), dates, temporal_channel_major
        self.means, self.stds, self.nodata = means[:, None, None], stds[:, None, None], nodata
        self._src, self._pid = None, None

    def __len__(self) -> int:
        return len(self.tiles)

    def __getstate__(self) -> dict:  # loader workers open their own handle
        return {**self.__dict__, "_src": None, "_pid": None}

    @property
    def src(self) -> rasterio.DatasetReader:
        """The scene, opened once per process."""
        if self._src is None or self._pid != os.getpid():
            self._src, self._pid = rasterio.open(self.path), os.getpid()
        return self._src

    def close(self) -> None:
        """Closes the scene; a later read opens it again. A handle left open is closed by rasterio's
        ``__del__`` at interpreter exit, when it can no longer report, and Python then prints a bare
        "Error in sys.excepthook"."""
        if self._src is not None and self._pid == os.getpid():
            self._src.close()
        self._src, self._pid = None, None

    def _read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        data = self.src.read(self.band_indexes, window=window, out_dtype="float32")
        return data, missing_values(data, self.src.nodata, self.nodata)

    def valid(self, window: Window) -> np.ndarray:
        """``[h, w]`` bool: pixels of ``window`` where every band holds data."""
        return ~self._read(window)[1].any(axis=0)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        tile = self.tiles[index]
        h, w = min(self.crop, self.src.height - tile.row), min(self.crop, self.src.width - tile.col)
        data, invalid = self._read(Window(tile.col, tile.row, w, h))
        data = np.where(invalid, self.means, data)
        data = (data - self.means) / self.stds
        if (h, w) != (self.crop, self.crop):  # scene smaller than a tile
            data = np.pad(data, ((0, 0), (0, self.crop - h), (0, self.crop - w)), mode="edge")
        image = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        if self.dates > 1:
            channels = image.shape[0] // self.dates
            if self.temporal_channel_major:  # bands stored as (channel, time)
                image = image.reshape(channels, self.dates, *image.shape[1:])
            else:  # (time, channel): all bands of date 1, then date 2, …
                image = image.reshape(self.dates, channels, *image.shape[1:]).transpose(0, 1)
        return {"image": image}


def collate_tiles(samples: list[dict]) -> dict:
    """Stacks tile images; ``filename`` is empty so TerraTorch's per-file CustomWriter writes nothing
    (:class:`~terratorch_specmae.callbacks.SceneWriter` writes the scene)."""
    return {"image": torch.stack([s["image"] for s in samples]), "filename": []}


class SceneTilesDataModule(pl.LightningDataModule):
    """Predict-only datamodule: the tiles of one GeoTIFF scene (see the module docstring).

    Args:
        scene: the GeoTIFF to predict.
        crop: tile size in pixels (the size the model was trained on; divisible by its patch size).
        stride: tile step (``<= crop``); default ``crop * 3 // 4``.
        means, stds: per-band normalisation, one value per band of one date (as in the training config).
        bands: band names to read, matched against the file's band descriptions and read in this
            order; ``None`` reads every band in file order. With ``dates`` > 1, name every band of
            every date (e.g. ``BLUE_t1 … SWIR_2_t2``).
        dates: number of dates stacked in the file's bands (change detection: 2).
        temporal_channel_major: the file stores bands as (channel, time) instead of all bands of
            date 1, then date 2 (TerraTorch's option of the same name).
        nodata: a value that marks missing pixels besides the file's own nodata value and NaN.
        batch_size, num_workers: of the predict loader.
    """

    def __init__(
        self,
        scene: str,
        crop: int,
        means: list[float],
        stds: list[float],
        stride: int | None = None,
        bands: list[str] | None = None,
        dates: int = 1,
        temporal_channel_major: bool = False,
        nodata: float | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.scene = Path(scene)
        if not self.scene.is_file():
            raise FileNotFoundError(f"Scene to predict not found: {self.scene}")
        self.crop, self.stride = crop, stride if stride is not None else max(crop * 3 // 4, 1)
        self.batch_size, self.num_workers = batch_size, num_workers
        with rasterio.open(self.scene) as src:
            self.profile = {"crs": src.crs, "transform": src.transform, "height": src.height, "width": src.width}
            descriptions = list(src.descriptions)
            count = src.count
        self.shape = (self.profile["height"], self.profile["width"])
        if bands is None:
            band_indexes = list(range(1, count + 1))
        else:
            check_unique_bands(bands, "SceneTilesDataModule bands")
            missing = [b for b in bands if b not in descriptions]
            if missing:
                raise ValueError(f"{self.scene} has bands {descriptions}; bands {missing} asked for are not among them.")
            repeated = {b: [i + 1 for i, d in enumerate(descriptions) if d == b] for b in bands if descriptions.count(b) > 1}
            if repeated:  # reading by name would silently take the first of them
                raise ValueError(
                    f"{self.scene} describes several bands alike: duplicates {list(repeated)} at file band numbers "
                    f"{repeated} in {descriptions}; expected each band asked for by name to be described once."
                )
            band_indexes = [descriptions.index(b) + 1 for b in bands]
        if dates < 1 or len(band_indexes) != len(means) * dates or len(means) != len(stds):
            raise ValueError(
                f"Expected {len(means)} means and stds per date × {dates} date(s) = {len(means) * dates} bands; "
                f"got {len(means)} means, {len(stds)} stds and {len(band_indexes)} bands read from {self.scene}."
            )
        first_date = band_indexes[::dates] if temporal_channel_major else band_indexes[: len(means)]
        names = [descriptions[i - 1] or f"band {i}" for i in first_date]
        check_stds(means, stds, names, f"The normalisation of {self.scene}")
        self.tiles = scene_tiles(*self.shape, self.crop, self.stride)
        # One mean/std per band read: (time, channel) order repeats the list per date, (channel, time) each value.
        per_band = np.repeat if temporal_channel_major else np.tile
        self.dataset = SceneTileDataset(
            self.scene, self.tiles, self.crop, band_indexes,
            per_band(np.asarray(means, np.float32), dates), per_band(np.asarray(stds, np.float32), dates),
            dates, temporal_channel_major, nodata,
        )  # fmt: skip

    def setup(self, stage: str) -> None:
        if stage != "predict":
            raise ValueError(f"SceneTilesDataModule only predicts (stage 'predict'), got stage {stage!r}.")

    def teardown(self, stage: str) -> None:
        self.dataset.close()  # after the prediction writers' last read

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            self.dataset, batch_size=self.batch_size, num_workers=self.num_workers, shuffle=False, collate_fn=collate_tiles
        )

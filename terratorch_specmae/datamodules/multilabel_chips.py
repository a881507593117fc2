"""Multi-label chips: GeoTIFF chips in a folder and a CSV of 0/1 labels per chip (BigEarthNet-style).

TerraTorch's generic classification datamodule reads one label per chip from an ImageFolder
layout; several labels per chip need a table, hence this small datamodule.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from terratorch_specmae.datamodules.scene_tiles import missing_values


def read_label_table(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """``(class names, file names, labels [N, K] of 0/1)`` from a CSV with a ``filename`` column.

    Blank lines (empty or only whitespace) are skipped wherever they are, as pandas' ``read_csv`` does;
    any other row must hold a file name and one 0/1 label per class, else the error names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Label table not found: expected a CSV file at {str(path)!r}.")
    rows: list[tuple[int, list[str]]] = []  # (line number, cells), blank lines left out
    with path.open(newline="") as f:
        reader = csv.reader(f)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            rows.append((reader.line_num, row))
    if not rows or rows[0][1][0] != "filename" or len(rows[0][1]) < 2:
        got = rows[0][1] if rows else "nothing"
        raise ValueError(f"{path}: expected a header 'filename,<class>,<class>…', got {got}.")
    classes = rows[0][1][1:]
    files, labels = [], np.zeros((len(rows) - 1, len(classes)), dtype=np.float32)
    for i, (line, row) in enumerate(rows[1:]):
        where = f"{path}, line {line}"
        if len(row) != len(classes) + 1:
            raise ValueError(
                f"{where}: expected {len(classes) + 1} values (a filename and a 0/1 label for each of {classes}), "
                f"got {len(row)}: {row}."
            )
        if not row[0].strip():
            raise ValueError(f"{where}: the filename is empty; expected a chip's file name, got {row}.")
        files.append(row[0])
        for j, (name, value) in enumerate(zip(classes, row[1:])):
            try:
                label = int(value)
            except ValueError:
                label = None
            if label not in (0, 1):
                got = "an empty value" if not value.strip() else repr(value)
                raise ValueError(f"{where}: expected labels of 0 or 1, got {got} in column {name!r} (chip {row[0]!r}).")
            labels[i, j] = label
    return classes, files, labels


class MultiLabelChips(Dataset):
    """``{"image": [C, H, W] float (normalised), "label": [K] float, "filename"}`` per chip.

    Missing pixels (the file's nodata value, ``nodata``, NaN, ±inf) are set to the band mean, i.e. 0
    after normalisation, as :class:`~terratorch_specmae.datamodules.scene_tiles.SceneTileDataset` does.
    """

    def __init__(self, root, files, labels, means, stds, flips: bool = False, nodata: float | None = None) -> None:
        self.paths = [Path(root) / f for f in files]
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise ValueError(f"{len(missing)} chips of the label table are not in {root}: {missing[:3]}.")
        self.labels = torch.from_numpy(labels)
        self.means = torch.tensor(means, dtype=torch.float32)[:, None, None]
        self.stds = torch.tensor(stds, dtype=torch.float32)[:, None, None]
        self.flips, self.nodata = flips, nodata

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        import rasterio

        with rasterio.open(self.paths[i]) as src:
            data = src.read(out_dtype="float32")
            missing = torch.from_numpy(missing_values(data, src.nodata, self.nodata))
        image = torch.from_numpy(data)
        if image.shape[0] != self.means.shape[0]:
            raise ValueError(f"{self.paths[i]} has {image.shape[0]} bands; the means/stds give {self.means.shape[0]}.")
        image = (torch.where(missing, self.means, image) - self.means) / self.stds
        if self.flips:
            if torch.rand(()) < 0.5:
                image = image.flip(-1)
            if torch.rand(()) < 0.5:
                image = image.flip(-2)
        return {"image": image, "label": self.labels[i], "filename": str(self.paths[i])}


class MultiLabelChipDataModule(pl.LightningDataModule):
    """Train / val / test chips with CSV label tables (``filename`` + one 0/1 column per class).

    ``means``/``stds`` normalise each band; ``flips`` adds random horizontal/vertical flips in
    training. Every split must name the same classes, in the same order. ``nodata``: a value that
    marks missing pixels besides the file's own nodata value and NaN/±inf (as
    :class:`~terratorch_specmae.datamodules.SceneTilesDataModule`'s option); missing pixels enter as
    the band mean (0 after normalisation).
    """

    def __init__(
        self,
        train_data_root: str,
        train_labels: str,
        val_data_root: str,
        val_labels: str,
        means: Sequence[float],
        stds: Sequence[float],
        test_data_root: str | None = None,
        test_labels: str | None = None,
        batch_size: int = 16,
        num_workers: int = 0,
        flips: bool = True,
        nodata: float | None = None,
    ) -> None:
        super().__init__()
        if len(means) != len(stds):
            raise ValueError(f"Expected one mean and one std per band, got {len(means)} and {len(stds)}.")
        self.splits = {"train": (train_data_root, train_labels), "val": (val_data_root, val_labels)}
        if test_data_root is not None:
            self.splits["test"] = (test_data_root, test_labels)
        self.means, self.stds, self.flips, self.nodata = list(means), list(stds), flips, nodata
        self.batch_size, self.num_workers = batch_size, num_workers
        self.datasets: dict[str, MultiLabelChips] = {}

    def setup(self, stage: str | None = None) -> None:
        self.class_names = None
        for split, (root, table) in self.splits.items():
            classes, files, labels = read_label_table(table)
            if self.class_names is not None and classes != self.class_names:
                raise ValueError(f"{table} names classes {classes}; the other splits name {self.class_names}.")
            self.class_names = classes
            self.datasets[split] = MultiLabelChips(
                root, files, labels, self.means, self.stds, self.flips and split == "train", self.nodata
            )
        if "test" not in self.datasets:
            self.datasets["test"] = self.datasets["val"]

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=split == "train",
                          num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

"""Pixel-centred patches of a hyperspectral scene (+ auxiliary rasters) for pretraining and pixel classification.

TerraTorch's generic datamodules read one chip per file; HSI pixel classification (Houston
2018, Berlin) needs one sample per *labelled pixel* of a single scene, with its P×P
neighbourhood — hence this datamodule.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from terratorch_specmae.datamodules.pixel_patches import check_patch_size, check_pixels, edge_pad, patches_from_padded



def read_raster(path: str | Path) -> tuple[np.ndarray, dict]:
    """``[C, H, W]`` float32 values and ``{"crs", "transform", "descriptions", "nodata"}`` of a GeoTIFF."""
    import rasterio

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Raster not found: expected a file at {str(path)!r}.")
    with rasterio.open(path) as src:
        meta = {"crs": src.crs, "transform": src.transform, "descriptions": src.descriptions, "nodata": src.nodata}
        data = src.read().astype(np.float32)
    if meta["nodata"] is not None:
        data[data == meta["nodata"]] = np.nan
    return data, meta


class PixelPatches(Dataset):
    """``{"image": [C, P, P], "label": class}`` (or no label) for pixels ``(rows[i], cols[i])`` of a scene.

    ``padded`` is the scene after :func:`edge_pad` (shared by the datasets of one scene).
    """

    def __init__(self, padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch_size: int, labels=None) -> None:
        check_pixels(padded, rows, cols, patch_size)
        self.padded, self.rows, self.cols, self.patch_size, self.labels = padded, rows, cols, patch_size, labels

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        patch = patches_from_padded(self.padded, self.rows[i : i + 1], self.cols[i : i + 1], self.patch_size)[0]
        sample = {"image": torch.from_numpy(patch), "row": int(self.rows[i]), "col": int(self.cols[i])}
        if self.labels is not None:
            sample["label"] = int(self.labels[i])
        return sample


class HSIPixelDataModule(pl.LightningDataModule):
    """Samples of pixel-centred ``patch_size`` × ``patch_size`` patches from one scene.

    Args:
        hsi_path: the hyperspectral GeoTIFF (bands in file order).
        aux_paths: auxiliary GeoTIFFs (SAR, DSM …) on the same grid, stacked after the HSI bands.
        labels_path: class raster, 0 = unlabelled, 1…K = classes (the model sees 0…K−1). Without
            it the module serves unlabelled patches of every pixel, for pretraining.
        split_path: raster with 1 = train and 2 = test pixels (Houston/Berlin-style split); without
            it the labelled pixels are split at random (``test_fraction``).
        val_fraction: share of the training pixels held out for validation (random, seeded).
        means, stds: per-band normalisation; computed over the whole scene when not given
            (``self.means`` / ``self.stds`` after ``setup``).
        max_pretrain_pixels: cap on the unlabelled training pixels (a seeded random subset, the same every epoch).

    Every raster must share the HSI's size and georeference; NaN or nodata pixels are an error.
    ``predict`` yields every pixel of the scene in row-major order (see ``ClassMapWriter``).
    """

    def __init__(
        self,
        hsi_path: str,
        aux_paths: Sequence[str] = (),
        labels_path: str | None = None,
        split_path: str | None = None,
        patch_size: int = 7,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.5,
        means: Sequence[float] | None = None,
        stds: Sequence[float] | None = None,
        max_pretrain_pixels: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_patch_size(patch_size)
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}.")
        self.hsi_path, self.aux_paths = hsi_path, list(aux_paths)
        self.labels_path, self.split_path = labels_path, split_path
        self.patch_size, self.batch_size, self.num_workers = patch_size, batch_size, num_workers
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.means, self.stds = means, stds
        self.max_pretrain_pixels = max_pretrain_pixels
        self.datasets: dict[str, PixelPatches] = {}

    def load_stack(self) -> np.ndarray:
        """The normalised ``[C, H, W]`` stack of HSI and auxiliary bands; sets ``self.profile``."""
        hsi, meta = read_raster(self.hsi_path)
        layers, names = [hsi], list(meta["descriptions"])
        for path in self.aux_paths:
            aux, aux_meta = read_raster(path)
            self._check_same_grid(path, aux, aux_meta, hsi, meta)
            layers.append(aux)
            names += list(aux_meta["descriptions"])
        stack = np.concatenate(layers)
        bad = ~np.isfinite(stack)
        if bad.any():
            band, row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"{int(bad.sum())} NaN/nodata values in the input rasters (first: band {band}, pixel {row}, {col}); "
                "expected finite values everywhere a patch may reach. Fill them before training."
            )
        means = np.asarray(self.means if self.means is not None else stack.mean(axis=(1, 2)), np.float32)
        stds = np.asarray(self.stds if self.stds is not None else stack.std(axis=(1, 2)), np.float32)
        if means.shape != (stack.shape[0],) or stds.shape != (stack.shape[0],):
            raise ValueError(f"Expected {stack.shape[0]} means and stds (one per band), got {means.shape[0]} and {stds.shape[0]}.")
        self.means, self.stds = means.tolist(), stds.tolist()
        self.band_names, self.profile = names, {"crs": meta["crs"], "transform": meta["transform"]}
        self.shape = stack.shape[1:]
        return (stack - means[:, None, None]) / np.where(stds > 0, stds, 1.0)[:, None, None]

    @staticmethod
    def _check_same_grid(path, data, meta, hsi, hsi_meta) -> None:
        if data.shape[1:] != hsi.shape[1:] or meta["transform"] != hsi_meta["transform"] or meta["crs"] != hsi_meta["crs"]:
            raise ValueError(
                f"{path} is not on the HSI's grid: expected {hsi.shape[1]}×{hsi.shape[2]} px, "
                f"{hsi_meta['crs']}, {tuple(hsi_meta['transform'])[:6]}; got {data.shape[1]}×{data.shape[2]} px, "
                f"{meta['crs']}, {tuple(meta['transform'])[:6]}."
            )

    def setup(self, stage: str | None = None) -> None:
        stack = self.load_stack()
        padded = edge_pad(stack, self.patch_size)  # once, shared by every split
        rng = np.random.default_rng(self.seed)
        height, width = self.shape
        if stage == "predict":
            rows, cols = np.divmod(np.arange(height * width), width)
            self.datasets["predict"] = PixelPatches(padded, rows, cols, self.patch_size)
            return
        if self.labels_path is None:  # pretraining: unlabelled patches of every pixel
            pixels = rng.permutation(height * width)
            n_val = max(1, int(len(pixels) * self.val_fraction))
            train = pixels[n_val:][: self.max_pretrain_pixels]
            for name, ids in (("train", train), ("val", pixels[:n_val])):
                rows, cols = np.divmod(ids, width)
                self.datasets[name] = PixelPatches(padded, rows, cols, self.patch_size)
            return
        labels, meta = read_raster(self.labels_path)
        self._check_same_grid(self.labels_path, labels, meta, stack, self.profile)
        labels = labels[0].astype(np.int64)
        labelled = np.argwhere(labels > 0)
        if len(labelled) == 0:
            raise ValueError(f"{self.labels_path} has no labelled pixel (expected classes 1…K, 0 = unlabelled).")
        if self.split_path is not None:
            split, split_meta = read_raster(self.split_path)
            self._check_same_grid(self.split_path, split, split_meta, stack, self.profile)
            which = split[0][labelled[:, 0], labelled[:, 1]]
            train_px, test_px = labelled[which == 1], labelled[which == 2]
        else:
            order = rng.permutation(len(labelled))
            n_test = int(len(labelled) * self.test_fraction)
            test_px, train_px = labelled[order[:n_test]], labelled[order[n_test:]]
        order = rng.permutation(len(train_px))
        n_val = int(len(train_px) * self.val_fraction)
        parts = {"train": train_px[order[n_val:]], "val": train_px[order[:n_val]], "test": test_px}
        for name, px in parts.items():
            if len(px) == 0:
                raise ValueError(f"No labelled pixels for the {name} set: check the split raster and fractions.")
            self.datasets[name] = PixelPatches(padded, px[:, 0], px[:, 1], self.patch_size, labels[px[:, 0], px[:, 1]] - 1)
        self.num_classes = int(labels.max())

    def _loader(self, name: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(self.datasets[name], batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")

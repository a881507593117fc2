"""Pixel-centred patches of a hyperspectral scene (+ auxiliary rasters) for pretraining and pixel classification.

TerraTorch's generic datamodules read one chip per file; HSI pixel classification (Houston
2018, Berlin) needs one sample per *labelled pixel* of a single scene, with its P×P
neighbourhood — hence this datamodule.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from terratorch_specmae.datamodules.hsi_files import (
    MAT_SUFFIX,
    MatScene,
    Scene,
    check_wavelengths,
    mat_keys,
    open_scene,
    read_class_raster,
    read_pixel_index,
    split_mat_key,
    wavelength_name,
)
from terratorch_specmae.datamodules.pixel_patches import check_patch_size, check_pixels, edge_pad, patches_from_padded


class PixelPatches(Dataset):
    """``{"image": [C, P, P], "label": class}`` (or no label) for pixels ``(rows[i], cols[i])`` of a scene.

    ``padded`` is the scene after :func:`edge_pad` (shared by the datasets of one scene).
    """

    def __init__(self, padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch_size: int, labels=None) -> None:
        check_pixels(padded, rows, cols, patch_size)
        self.padded, self.rows, self.cols, self.patch_size, self.labels = padded, rows, cols, patch_size, labels

    def __len__(self) -> int:
        return len(self.rows)

    def patch(self, i: int) -> np.ndarray:
        return patches_from_padded(self.padded, self.rows[i : i + 1], self.cols[i : i + 1], self.patch_size)[0]

    def __getitem__(self, i: int) -> dict:
        sample = {"image": torch.from_numpy(self.patch(i)), "row": int(self.rows[i]), "col": int(self.cols[i])}
        if self.labels is not None:
            sample["label"] = int(self.labels[i])
        return sample


class WindowPatches(PixelPatches):
    """:class:`PixelPatches` read from the files patch by patch (``lazy=True``): each sample reads its
    window from every source, repeats edge pixels at the border (as :func:`edge_pad` does) and
    standardises it, so memory does not grow with the scene."""

    def __init__(self, scenes: Sequence[Scene], rows, cols, patch_size: int, means, stds, labels=None) -> None:
        check_patch_size(patch_size)
        height, width = scenes[0].height, scenes[0].width
        rows, cols = np.asarray(rows), np.asarray(cols)
        if rows.size and (rows.min() < 0 or cols.min() < 0 or rows.max() >= height or cols.max() >= width):
            raise ValueError(f"Pixel coordinates outside the {height}×{width} image.")
        self.scenes, self.rows, self.cols, self.patch_size, self.labels = list(scenes), rows, cols, patch_size, labels
        self.means = np.asarray(means, np.float32)[:, None, None]
        self.scales = 1.0 / np.where(np.asarray(stds) > 0, np.asarray(stds), 1.0).astype(np.float32)[:, None, None]

    def patch(self, i: int) -> np.ndarray:
        half, row, col = self.patch_size // 2, int(self.rows[i]), int(self.cols[i])
        height, width = self.scenes[0].height, self.scenes[0].width
        r0, r1, c0, c1 = max(row - half, 0), min(row + half + 1, height), max(col - half, 0), min(col + half + 1, width)
        window = np.concatenate([scene.read(slice(r0, r1), slice(c0, c1)) for scene in self.scenes])
        if not np.isfinite(window).all():
            band, r, c = np.argwhere(~np.isfinite(window))[0]
            raise ValueError(
                f"NaN/nodata value in the input rasters at band {band}, pixel {r0 + r}, {c0 + c}; expected finite "
                "values everywhere a patch may reach. Fill them before training."
            )
        pads = ((0, 0), (r0 - (row - half), row + half + 1 - r1), (c0 - (col - half), col + half + 1 - c1))
        return np.ascontiguousarray((np.pad(window, pads, mode="edge") - self.means) * self.scales, dtype=np.float32)


def _pixels(count: int) -> str:
    return f"{count} pixel{'' if count == 1 else 's'}"


def nonfinite_error(count: int, band: int, row: int, col: int) -> ValueError:
    """The error for ``count`` NaN/nodata values in the stacked input, the first at ``band``, ``row``, ``col``."""
    return ValueError(
        f"{count} NaN/nodata values in the input rasters (first: band {band}, pixel {row}, {col}); "
        "expected finite values everywhere a patch may reach. Fill them before training."
    )


def band_statistics(scenes: Sequence[Scene], max_block_bytes: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation of the stacked ``scenes``, read in blocks of rows of at
    most ``max_block_bytes`` (float32) per scene, so memory stays at a few blocks; NaN/nodata
    anywhere is an error that names the first one."""
    totals, squares, bad, first, offset = [], [], 0, None, 0
    height, width = scenes[0].height, scenes[0].width
    for scene in scenes:
        bands = scene.shape[0]
        step = max(1, max_block_bytes // (4 * bands * width))
        total, square = np.zeros(bands), np.zeros(bands)
        for start in range(0, height, step):
            block = scene.read(slice(start, min(start + step, height)))
            finite = np.isfinite(block)
            if not finite.all():
                bad += int((~finite).sum())
                if first is None:
                    band, row, col = np.argwhere(~finite)[0]
                    first = (offset + int(band), start + int(row), int(col))
                continue
            total += block.sum(axis=(1, 2), dtype=np.float64)
            block64 = block.astype(np.float64)
            square += np.einsum("chw,chw->c", block64, block64)
        totals.append(total)
        squares.append(square)
        offset += bands
    if bad:
        raise nonfinite_error(bad, *first)
    count = height * width
    means = np.concatenate(totals) / count
    return means, np.sqrt(np.maximum(np.concatenate(squares) / count - means**2, 0.0))


class HSIPixelDataModule(pl.LightningDataModule):
    """Samples of pixel-centred ``patch_size`` × ``patch_size`` patches from one scene.

    Every path may be a GeoTIFF or other GDAL raster (ENVI ``.hdr`` + raw included) or a MATLAB
    ``.mat`` file, v5 or v7.3 (``"file.mat:name"`` picks a variable; see
    :mod:`~terratorch_specmae.datamodules.hsi_files`).

    Args:
        hsi_path: the hyperspectral scene (bands in file order).
        aux_paths: auxiliary rasters (SAR, DSM, LiDAR …) on the same grid, stacked after the HSI bands.
        labels_path: class raster, 0 (or ``label_nodata``) = unlabelled, 1…K = classes (the model sees 0…K−1). Without
            it the module serves unlabelled patches of every pixel, for pretraining.
        test_labels_path: a second class raster holding the test pixels (Hong et al.'s
            ``TrainImage``/``TestImage``, the ``TRLabel``/``TSLabel`` layout); ``labels_path`` then
            holds the training pixels.
        split_path: which labelled pixels train and which test: a raster with 1 = train and 2 = test,
            or a ``.mat`` file of 0-based ``N × 2`` (row, column) arrays named ``*train`` and ``*test``
            (SS-MAE's ``berlin_index.mat``: ``berlin_train``, ``berlin_test``). Without it (and
            without ``test_labels_path``) the labelled pixels are split at random (``test_fraction``).
        wavelengths: centre wavelength (nm) of each HSI band, where the file does not carry them
            (ENVI headers and tagged GeoTIFFs do). With wavelengths, from either, the HSI bands are
            named by them (``"652.5nm"``, as a model's ``bands`` name them); otherwise by the file's
            band descriptions, else ``band_0`` …; auxiliary bands by their descriptions, else the file's stem.
        val_fraction: share of the training pixels held out for validation (random, seeded); 0: no
            validation set (then monitor nothing, or ``train/loss``).
        means, stds: per-band normalisation; computed over the whole scene when not given
            (``self.means`` / ``self.stds`` after ``setup``).
        max_pretrain_pixels: cap on the unlabelled training pixels (a seeded random subset, the same every epoch).
        lazy: read each patch from the files when it is drawn (and the statistics in blocks of rows)
            instead of holding the scene in memory; for scenes larger than memory. A MATLAB v5 file is
            still read whole (the format has no windowed access): save it as v7.3, ENVI or GeoTIFF.
        axis_order: how a MATLAB HSI cube is stored: ``"HWC"`` (rows, columns, bands: every HSI
            benchmark's files) or ``"CHW"`` (bands first). A cube whose stated wavelengths match another
            axis than its bands is refused, naming this option.
        num_classes: the number of classes K the label rasters may hold (1…K). Not given: the attached
            model's ``model_args["num_classes"]`` where the trainer's module has one (TerraTorch's
            ClassificationTask, PixelClassificationTask), else the largest label (no check). A label beyond K
            is refused, naming the file, its values and pixel counts, rather than failing in the loss; a model
            ``ignore_index`` i ≥ 0 lets the value i + 1 through (the loss skips it).
        label_nodata: a label value that marks unlabelled pixels besides 0 (255 or 65535 in many ground-truth
            files; −1): such pixels read as 0 and are in no train, val or test set. A raster's own nodata
            value (GeoTIFF) already reads as 0.

    Every raster must share the HSI's size (and georeference, where both have one); NaN or nodata
    pixels are an error. ``predict`` yields every pixel of the scene in row-major order (see
    ``ClassMapWriter``). After ``setup``: ``band_names``, ``wavelengths`` (of the HSI bands, or
    None), ``shape`` and ``profile`` (``crs``, ``transform``; None for ``.mat`` files).
    """

    def __init__(
        self,
        hsi_path: str,
        aux_paths: Sequence[str] = (),
        labels_path: str | None = None,
        split_path: str | None = None,
        test_labels_path: str | None = None,
        wavelengths: Sequence[float] | None = None,
        patch_size: int = 7,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.5,
        means: Sequence[float] | None = None,
        stds: Sequence[float] | None = None,
        max_pretrain_pixels: int | None = None,
        lazy: bool = False,
        seed: int = 0,
        axis_order: str = "HWC",
        num_classes: int | None = None,
        label_nodata: int | None = None,
    ) -> None:
        super().__init__()
        check_patch_size(patch_size)
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}.")
        if test_labels_path is not None and (labels_path is None or split_path is not None):
            raise ValueError(
                "test_labels_path needs labels_path (the training labels) and no split_path: the two label "
                "rasters are the split."
            )
        self.hsi_path, self.aux_paths = hsi_path, list(aux_paths)
        self.labels_path, self.split_path, self.test_labels_path = labels_path, split_path, test_labels_path
        self.user_wavelengths = None if wavelengths is None else [float(w) for w in wavelengths]
        self.patch_size, self.batch_size, self.num_workers = patch_size, batch_size, num_workers
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.means, self.stds = means, stds
        self.max_pretrain_pixels, self.lazy = max_pretrain_pixels, lazy
        self.axis_order = axis_order
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be at least 1 (label rasters hold classes 1…K), got {num_classes}.")
        self.num_classes_option, self.label_nodata = num_classes, label_nodata
        self.datasets: dict[str, PixelPatches] = {}

    def open_sources(self) -> list[Scene]:
        """The HSI and auxiliary scenes, checked to share a grid; sets ``band_names``, ``wavelengths``,
        ``shape`` and ``profile``."""
        hsi = open_scene(self.hsi_path, self.axis_order)
        scenes = [hsi] + [open_scene(path) for path in self.aux_paths]
        for path, scene in zip(self.aux_paths, scenes[1:], strict=True):
            self._check_same_grid(path, scene, hsi)
        wavelengths = self.user_wavelengths if self.user_wavelengths is not None else hsi.wavelengths
        if wavelengths is not None and len(wavelengths) != hsi.shape[0]:
            other = [axis for axis, n in (("rows", hsi.shape[1]), ("columns", hsi.shape[2])) if n == len(wavelengths)]
            hint = (
                f" The array has {len(wavelengths)} {other[0]}: it looks stored with another axis order (set "
                f"axis_order: {'HWC' if self.axis_order == 'CHW' else 'CHW'})." if other and isinstance(hsi, MatScene) else ""
            )
            raise ValueError(
                f"{len(wavelengths)} wavelengths given for the {hsi.shape[0]} bands of {self.hsi_path!r} (read as "
                f"{hsi.shape[0]} bands × {hsi.shape[1]} rows × {hsi.shape[2]} columns); expected one per band.{hint}"
            )
        if wavelengths is not None:
            given = " (the wavelengths option)" if self.user_wavelengths else ""
            check_wavelengths(wavelengths, f"{self.hsi_path!r}{given}")
            names = [wavelength_name(w) for w in wavelengths]
        elif hsi.band_names:
            names = list(hsi.band_names)
        else:
            names = [f"band_{i}" for i in range(hsi.shape[0])]
        for path, scene in zip(self.aux_paths, scenes[1:], strict=True):
            stem = split_mat_key(path)[0].stem
            names += list(scene.band_names) if scene.band_names else [
                stem if scene.shape[0] == 1 else f"{stem}_{i}" for i in range(scene.shape[0])
            ]
        self.band_names, self.wavelengths = names, None if wavelengths is None else list(wavelengths)
        self.shape, self.profile = hsi.shape[1:], {"crs": hsi.crs, "transform": hsi.transform}
        self.reference = hsi  # the grid label and split rasters must share
        return scenes

    def load_stack(self) -> np.ndarray:
        """The normalised ``[C, H, W]`` stack of HSI and auxiliary bands, read whole."""
        scenes = self.open_sources()
        try:
            stack = np.concatenate([scene.read() for scene in scenes])
        finally:
            for scene in scenes:
                scene.close()
        bad = ~np.isfinite(stack)
        if bad.any():
            raise nonfinite_error(int(bad.sum()), *np.argwhere(bad)[0])
        means, stds = self._set_normalisation(stack.shape[0], lambda: (stack.mean(axis=(1, 2)), stack.std(axis=(1, 2))))
        stack -= means[:, None, None]  # in place: the scene is held once, not twice
        stack /= np.where(stds > 0, stds, 1.0)[:, None, None]
        return stack

    def _set_normalisation(self, bands: int, statistics) -> tuple[np.ndarray, np.ndarray]:
        """``means``/``stds`` as given, the missing ones from ``statistics()`` (called only then); checked and kept."""
        means, stds = self.means, self.stds
        if means is None or stds is None:
            computed = statistics()
            means, stds = (computed[0] if means is None else means), (computed[1] if stds is None else stds)
        means, stds = np.asarray(means, np.float32), np.asarray(stds, np.float32)
        if means.shape != (bands,) or stds.shape != (bands,):
            raise ValueError(f"Expected {bands} means and stds (one per band), got {means.size} and {stds.size}.")
        self.means, self.stds = means.tolist(), stds.tolist()
        return means, stds

    def _check_same_grid(self, path, scene: Scene, hsi: Scene) -> None:
        same_size = scene.shape[1:] == hsi.shape[1:]
        georeferenced = scene.transform is not None and hsi.transform is not None
        if not same_size or (georeferenced and (scene.transform != hsi.transform or scene.crs != hsi.crs)):
            raise ValueError(
                f"{path} is not on the HSI's grid: expected {hsi.height}×{hsi.width} px, "
                f"{hsi.crs}, {tuple(hsi.transform or ())[:6]}; got {scene.height}×{scene.width} px, "
                f"{scene.crs}, {tuple(scene.transform or ())[:6]}."
            )

    def _datasets_from(self, source, rows, cols, labels=None) -> PixelPatches:
        """Patches of ``source``: the scenes (``lazy``) or the edge-padded normalised stack."""
        if self.lazy:
            return WindowPatches(source, rows, cols, self.patch_size, self.means, self.stds, labels)
        return PixelPatches(source, rows, cols, self.patch_size, labels)

    def setup(self, stage: str | None = None) -> None:
        if self.lazy:
            source = self.open_sources()
            self._set_normalisation(sum(s.shape[0] for s in source), lambda: band_statistics(source))
            for scene in source:
                scene.close()
        else:
            source = edge_pad(self.load_stack(), self.patch_size)  # once, shared by every split
        rng = np.random.default_rng(self.seed)
        height, width = self.shape
        if stage == "predict":
            rows, cols = np.divmod(np.arange(height * width), width)
            self.datasets["predict"] = self._datasets_from(source, rows, cols)
            return
        if self.labels_path is None:  # pretraining: unlabelled patches of every pixel
            pixels = rng.permutation(height * width)
            n_val = max(1, int(len(pixels) * self.val_fraction)) if self.val_fraction > 0 else 0
            train = pixels[n_val:][: self.max_pretrain_pixels]
            for name, ids in (("train", train), ("val", pixels[:n_val])):
                if len(ids):
                    rows, cols = np.divmod(ids, width)
                    self.datasets[name] = self._datasets_from(source, rows, cols)
            return
        labels, train_px, test_px = self._labelled_split(rng)
        order = rng.permutation(len(train_px))
        n_val = int(len(train_px) * self.val_fraction)
        parts = {"train": train_px[order[n_val:]], "val": train_px[order[:n_val]], "test": test_px}
        if self.val_fraction == 0:  # no validation set (SS-MAE's protocol: train and test only)
            del parts["val"]
        for name, px in parts.items():
            if len(px) == 0:
                raise ValueError(f"No labelled pixels for the {name} set: check the split and fractions.")
            classes = labels[px[:, 0], px[:, 1]] - 1
            self.datasets[name] = self._datasets_from(source, px[:, 0], px[:, 1], classes)

    def _labelled_split(self, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(labels, train pixels, test pixels)``: the class raster (1…K, 0 unlabelled) and ``[N, 2]`` (row, column)."""
        expected = self._expected_classes()
        labels = self._read_labels(self.labels_path, "label raster", *expected)
        if self.test_labels_path is not None:
            test = self._read_labels(self.test_labels_path, "test label raster", *expected)
            overlap = (labels > 0) & (test > 0)
            if overlap.any():
                row, col = np.argwhere(overlap)[0]
                raise ValueError(
                    f"{int(overlap.sum())} pixels are labelled in both {self.labels_path!r} and "
                    f"{self.test_labels_path!r} (first: row {row}, column {col}); expected disjoint train and test pixels."
                )
            train_px, test_px = np.argwhere(labels > 0), np.argwhere(test > 0)
            labels = np.maximum(labels, test)
        else:
            labelled = np.argwhere(labels > 0)
            if len(labelled) == 0:
                raise ValueError(f"{self.labels_path} has no labelled pixel (expected classes 1…K, 0 = unlabelled).")
            if self.split_path is None:
                order = rng.permutation(len(labelled))
                n_test = int(len(labelled) * self.test_fraction)
                test_px, train_px = labelled[order[:n_test]], labelled[order[n_test:]]
            elif self._is_index_file(self.split_path):
                train_px, test_px = (read_pixel_index(self.split_path, key, self.shape) for key in self._index_keys())
                width = self.shape[1]
                both = np.intersect1d(train_px[:, 0] * width + train_px[:, 1], test_px[:, 0] * width + test_px[:, 1])
                if both.size:
                    raise ValueError(
                        f"{both.size} pixels of {self.split_path!r} are in both the train and the test list (first: "
                        f"row {both[0] // width}, column {both[0] % width}); expected disjoint train and test pixels."
                    )
                for name, px in (("train", train_px), ("test", test_px)):
                    unlabelled = labels[px[:, 0], px[:, 1]] == 0
                    if unlabelled.any():
                        row, col = px[np.argmax(unlabelled)]
                        raise ValueError(
                            f"{int(unlabelled.sum())} {name} pixels of {self.split_path!r} are unlabelled (0) in "
                            f"{self.labels_path!r} (first: row {row}, column {col}); expected labelled pixels, 0-based."
                        )
            else:
                split = read_class_raster(self.split_path, self.reference, "split raster", allowed={0, 1, 2})
                which = split[labelled[:, 0], labelled[:, 1]]
                train_px, test_px = labelled[which == 1], labelled[which == 2]
        self.num_classes = expected[0] or int(labels.max())
        return labels, train_px, test_px

    def _expected_classes(self) -> tuple[int | None, str, int | None]:
        """``(K, where K comes from, a label the loss skips)``: the ``num_classes`` option, else the attached
        model's ``model_args["num_classes"]`` (and its ``ignore_index`` + 1); K is None where neither is known."""
        if self.num_classes_option is not None:
            return self.num_classes_option, "num_classes", None
        model = getattr(self.trainer, "lightning_module", None) if self.trainer is not None else None
        hparams = getattr(model, "hparams", None) or {}
        model_args = hparams.get("model_args") or {}
        count = model_args.get("num_classes") if isinstance(model_args, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return None, "", None
        ignore = hparams.get("ignore_index")
        skipped = ignore + 1 if isinstance(ignore, int) and not isinstance(ignore, bool) and ignore >= 0 else None
        return count, "model_args.num_classes", skipped

    def _read_labels(self, path: str, what: str, count: int | None, option: str, skipped: int | None) -> np.ndarray:
        """A class raster (``label_nodata`` read as 0), refused where it holds a label beyond the ``count`` classes
        (set by ``option``) other than ``skipped``."""
        labels = read_class_raster(path, self.reference, what, unlabelled=self.label_nodata)
        if count is None:
            return labels
        beyond = labels > count
        if skipped is not None:
            beyond &= labels != skipped
        if not beyond.any():
            return labels
        values, pixels = np.unique(labels[beyond], return_counts=True)
        listed = ", ".join(f"{v} ({_pixels(n)})" for v, n in zip(values[:5].tolist(), pixels[:5].tolist(), strict=True))
        listed += f" and {len(values) - 5} more values" if len(values) > 5 else ""
        raise ValueError(
            f"{what} {path!r} holds {_pixels(int(beyond.sum()))} with labels beyond the {count} classes ({option}: "
            f"{count}): {listed}; expected 0 (unlabelled) or 1…{count} (the model's classes 0…{count - 1}, shifted by "
            f"one). If {values[-1]} marks unlabelled pixels, set the datamodule's label_nodata: {values[-1]} (those "
            f"pixels are then left out); if there are more classes, raise {option}."
        )

    @staticmethod
    def _is_index_file(path: str) -> bool:
        """A ``.mat`` split file without a variable named: SS-MAE's ``*_index.mat`` (N × 2 pixel lists)."""
        file, key = split_mat_key(path)
        return file.suffix.lower() == MAT_SUFFIX and key is None and len(mat_keys(file)) > 1

    def _index_keys(self) -> tuple[str, str]:
        keys = mat_keys(self.split_path)
        found = []
        for part in ("train", "test"):
            named = [k for k in keys if k.lower() == part or k.lower().endswith("_" + part)]
            if len(named) != 1:
                raise ValueError(
                    f"{self.split_path!r} holds {keys}; expected exactly one array named '{part}' or '<name>_{part}' "
                    f"(N × 2 0-based row, column pixel coordinates), found {named or 'none'}."
                )
            found.append(named[0])
        return found[0], found[1]

    def _loader(self, name: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(self.datasets[name], batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val") if "val" in self.datasets else []  # val_fraction 0: no validation

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")

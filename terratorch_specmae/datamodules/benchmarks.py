"""The papers' benchmarks — EuroSAT, BigEarthNet, OSCD — as TorchGeo datamodules with their protocols.

Each subclasses TorchGeo's own datamodule (which downloads the dataset when ``download: true``
and the machine is online) because, as shipped, those cannot be configured for our models from
YAML: they take the dataset's arguments as untyped ``**kwargs`` (LightningCLI cannot type them),
feed 64 px (EuroSAT) / 120 px (BigEarthNet) images where the papers fine-tune at 128 px, fix
BigEarthNet's band order, and (OSCD) hand TerraTorch ``[B, T, C, H, W]`` images and a
``[B, 1, H, W]`` mask where its temporal route expects ``[B, C, T, H, W]`` and ``[B, H, W]``;
TorchGeo 0.8.1's OSCD augmentations also fail with kornia 0.9 ("Video and mask must have the
same number of frames"). What each adds:

* ``bands`` are names, read in the model's order whatever the files' order (EuroSAT stores B8A
  last, BigEarthNet after B08); normalisation statistics follow the bands by name.
* images are resized (bilinear) to ``img_size`` (EuroSAT 64 → 128, BigEarthNet 120 → 128);
  training batches are flipped at random (OSCD: 128 px random crops of the training regions).
* OSCD validation and test run on whole regions, cut into ``img_size`` tiles (padded; padding
  is ``ignore_index`` in the mask), so F1 / precision / recall / IoU of the change class cover
  every labelled pixel — not TorchGeo's one centre crop per region.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import kornia.augmentation as K
import torch
import torch.nn.functional as F
from torch.utils.data import Subset
from torchgeo.datamodules import BigEarthNetDataModule, EuroSATDataModule, OSCDDataModule
from torchgeo.datasets import OSCD, EuroSAT

from terratorch_specmae.bands import SENSOR_PRESETS, check_unique_bands
from terratorch_specmae.plotting import segmentation_figure

SENTINEL2_L2A = list(SENSOR_PRESETS["sentinel2_l2a"])
# TorchGeo 0.8.1's BigEarthNet(bands="s2") channel order (files sorted with B8A as "B08A").
BIGEARTHNET_S2 = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")


def check_bands(bands: Sequence[str], available: Sequence[str], dataset: str) -> list[str]:
    bands = list(bands)
    missing = [b for b in bands if b not in available]
    if missing or not bands:
        raise ValueError(
            f"{dataset} has bands {list(available)}; got {bands} ({'unknown: ' + str(missing) if missing else 'empty'})."
        )
    check_unique_bands(bands, f"{dataset} bands")
    return bands


def require_training_batches(datamodule, name: str) -> None:
    """Fail when an epoch would train nothing: TorchGeo's training loader drops the last incomplete
    batch, so a training split smaller than one batch (per process) gives no optimizer step, and
    Lightning would only log "No training batches" and report success."""
    n = len(datamodule.train_dataset)
    processes = datamodule.trainer.world_size if datamodule.trainer is not None else 1
    per_process = math.ceil(n / processes)
    if per_process < datamodule.batch_size:
        where = f" over {processes} processes ({per_process} each)" if processes > 1 else ""
        raise ValueError(
            f"{name}: the training split has {n} samples{where}, fewer than batch_size {datamodule.batch_size}; "
            "TorchGeo's training loader drops the last incomplete batch, so no optimizer step would run. Expected "
            f"batch_size <= {max(per_process, 1)}" + (" (or more training data)." if n else "; the split is empty.")
        )


def image_augmentations(mean: torch.Tensor, std: torch.Tensor, img_size: int, train: bool) -> K.AugmentationSequential:
    steps = [K.Normalize(mean=mean, std=std), K.Resize(img_size, antialias=True)]
    if train:
        steps += [K.RandomHorizontalFlip(), K.RandomVerticalFlip()]
    return K.AugmentationSequential(*steps, data_keys=None, keepdim=True)


NORMALIZATIONS = ("dataset", "minmax_per_image")


def minmax_per_image(image: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Each image's bands min–max scaled to [0, 1] on their own (SpectralGPT's input scaling)."""
    image = image.float()
    low, high = image.amin(dim=(-2, -1), keepdim=True), image.amax(dim=(-2, -1), keepdim=True)
    return (image - low) / (high - low + eps)


class EuroSATBenchmarkDataModule(EuroSATDataModule):
    """EuroSAT (TorchGeo's train/val/test lists, 10 classes), bands by name, resized to ``img_size``.

    Batches: ``image`` ``[B, len(bands), img_size, img_size]``, ``label`` ``[B]``. Default bands: the
    12 Sentinel-2 L2A bands in wavelength order (B10, cirrus, left out as in S2MAE/SpectralGPT),
    although the files store B8A last.

    Input scaling, to match what the weights were pretrained on: ``normalization: dataset``
    (default) standardises each band with TorchGeo's EuroSAT statistics, or with ``means`` /
    ``stds`` when given (per band, in ``bands`` order: SSL4EO-S12's weights take mean 0, std
    10 000); ``normalization: minmax_per_image`` scales each image's bands to [0, 1] on their own
    (SpectralGPT's pretraining input).
    """

    def __init__(
        self,
        root: str = "data/eurosat",
        bands: list[str] | None = None,
        img_size: int = 128,
        batch_size: int = 64,
        num_workers: int = 0,
        download: bool = False,
        checksum: bool = False,
        normalization: str = "dataset",
        means: list[float] | None = None,
        stds: list[float] | None = None,
    ) -> None:
        bands = check_bands(bands or SENTINEL2_L2A, EuroSAT.all_band_names, "EuroSAT")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"EuroSAT normalization must be one of {NORMALIZATIONS}, got {normalization!r}.")
        if (means is None) != (stds is None):
            raise ValueError("EuroSAT: give means and stds together (per band), or neither (TorchGeo's statistics).")
        if normalization == "minmax_per_image" and means is not None:
            raise ValueError("EuroSAT: normalization minmax_per_image scales each image on its own; means/stds do not apply.")
        super().__init__(batch_size, num_workers, root=root, bands=bands, download=download, checksum=checksum)
        if means is not None:
            for what, values in (("means", means), ("stds", stds)):
                if len(values) != len(bands):
                    raise ValueError(f"EuroSAT {what} have {len(values)} values for the {len(bands)} bands {bands}.")
            if any(float(v) <= 0 for v in stds):
                raise ValueError(f"EuroSAT stds must be positive, got {list(stds)}.")
            self.mean, self.std = torch.tensor(means, dtype=torch.float32), torch.tensor(stds, dtype=torch.float32)
        elif normalization == "minmax_per_image":
            self.mean, self.std = torch.zeros(len(bands)), torch.ones(len(bands))
        self.band_names, self.img_size, self.normalization = bands, img_size, normalization
        self.train_aug = image_augmentations(self.mean, self.std, img_size, train=True)
        self.aug = image_augmentations(self.mean, self.std, img_size, train=False)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":
            require_training_batches(self, "EuroSAT")

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        if self.normalization == "minmax_per_image":
            batch = {**batch, "image": minmax_per_image(batch["image"])}
        return super().on_after_batch_transfer(batch, dataloader_idx)


class BigEarthNetBenchmarkDataModule(BigEarthNetDataModule):
    """BigEarthNet v1 Sentinel-2 (19 or 43 classes, multi-hot), bands by name, resized to ``img_size``.

    TorchGeo reads all 12 S2 bands in its own order (``BIGEARTHNET_S2``); the batch keeps
    ``bands`` in the given order. Normalisation: TorchGeo's per-band min/max of BigEarthNet.
    Batches: ``image`` ``[B, len(bands), img_size, img_size]``, ``label`` ``[B, num_classes]``.
    """

    def __init__(
        self,
        root: str = "data/bigearthnet",
        bands: list[str] | None = None,
        num_classes: int = 19,
        img_size: int = 128,
        batch_size: int = 64,
        num_workers: int = 0,
        download: bool = False,
        checksum: bool = False,
    ) -> None:
        bands = check_bands(bands or SENTINEL2_L2A, BIGEARTHNET_S2, "BigEarthNet (Sentinel-2)")
        super().__init__(
            batch_size, num_workers, root=root, bands="s2", num_classes=num_classes, download=download, checksum=checksum
        )
        self.band_names, self.img_size = bands, img_size
        self.band_index = torch.tensor([BIGEARTHNET_S2.index(b) for b in bands])
        self.mean, self.std = self.mean[self.band_index], self.std[self.band_index]
        self.train_aug = image_augmentations(self.mean, self.std, img_size, train=True)
        self.aug = image_augmentations(self.mean, self.std, img_size, train=False)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":
            require_training_batches(self, "BigEarthNet")

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        batch["image"] = batch["image"][:, self.band_index.to(batch["image"].device)]
        return super().on_after_batch_transfer(batch, dataloader_idx)


class RandomPairCrop:
    """Crops an OSCD sample (``image`` ``[2, C, H, W]``, ``mask`` ``[1, H, W]``) to ``size`` px at one
    random place for both dates and the mask; smaller sides are padded (mask: ``ignore_index``)."""

    def __init__(self, size: int, ignore_index: int) -> None:
        self.size, self.ignore_index = size, ignore_index

    def __call__(self, sample: dict) -> dict:
        image, mask = sample["image"], sample["mask"]
        h, w = image.shape[-2:]
        if h < self.size or w < self.size:  # pad up to one crop
            pad = (0, max(self.size - w, 0), 0, max(self.size - h, 0))
            image, mask = F.pad(image, pad), F.pad(mask, pad, value=self.ignore_index)
            h, w = image.shape[-2:]
        top = int(torch.randint(0, h - self.size + 1, ()))
        left = int(torch.randint(0, w - self.size + 1, ()))
        window = (..., slice(top, top + self.size), slice(left, left + self.size))
        return {**sample, "image": image[window], "mask": mask[window]}


def as_list(samples: list[dict]) -> list[dict]:
    return samples


def pad_to(image: torch.Tensor, mask: torch.Tensor, multiple: int, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pads H and W (bottom/right) up to a multiple of ``multiple``: image with 0, mask with ``ignore_index``."""
    h, w = image.shape[-2:]
    pad = (0, -w % multiple, 0, -h % multiple)
    return F.pad(image, pad), F.pad(mask, pad, value=ignore_index)


class OSCDBenchmarkDataModule(OSCDDataModule):
    """OSCD (Onera change detection, 24 Sentinel-2 pairs) for TerraTorch's temporal route.

    Training: ``img_size`` random crops of the training regions (``val_split_pct`` of them, by
    sorted region name and a seeded draw, validate — at least one region when ``val_split_pct``
    > 0, none at 0: every training region then trains), flipped at random. Validation and test: whole
    regions (``batch_size`` regions per step) cut into ``img_size`` tiles after padding.
    Batches: ``image`` ``[N, len(bands), 2, img_size, img_size]`` normalised per band with
    TorchGeo's OSCD statistics, ``mask`` ``[N, img_size, img_size]`` (1 change, 0 none,
    ``ignore_index`` padding).
    """

    def __init__(
        self,
        root: str = "data/oscd",
        bands: list[str] | None = None,
        img_size: int = 128,
        val_split_pct: float = 0.2,
        ignore_index: int = -1,
        batch_size: int = 8,
        eval_batch_size: int = 1,
        num_workers: int = 0,
        download: bool = False,
        checksum: bool = False,
    ) -> None:
        bands = check_bands(bands or SENTINEL2_L2A, OSCD.all_bands, "OSCD")
        if not 0 <= val_split_pct < 1:
            raise ValueError(f"OSCD val_split_pct must be in [0, 1), got {val_split_pct}.")
        super().__init__(
            batch_size, img_size, val_split_pct, num_workers, root=root, bands=bands, download=download, checksum=checksum
        )
        self.band_names, self.img_size, self.ignore_index = bands, img_size, ignore_index
        self.eval_batch_size = eval_batch_size

    def _regions(self, split: str, transforms) -> OSCD:
        dataset = OSCD(split=split, transforms=transforms, **self.kwargs)
        dataset.files = sorted(dataset.files, key=lambda f: f["region"])  # filesystem order varies
        return dataset

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate"):
            train = self._regions("train", RandomPairCrop(self.img_size, self.ignore_index))
            n_val = max(1, round(len(train) * self.val_split_pct)) if self.val_split_pct > 0 else 0
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0)).tolist()
            self.train_dataset = Subset(train, sorted(order[n_val:]))
            self.val_dataset = Subset(self._regions("train", None), sorted(order[:n_val]))
            if stage == "fit":
                require_training_batches(self, "OSCD")
        if stage == "test":
            self.test_dataset = self._regions("test", None)

    def _dataloader_factory(self, split: str):
        if split == "train":
            return super()._dataloader_factory(split)
        dataset = getattr(self, f"{split}_dataset")
        return torch.utils.data.DataLoader(
            dataset, batch_size=self.eval_batch_size, shuffle=False, num_workers=self.num_workers,
            collate_fn=as_list,  # whole regions differ in size: tiled before transfer
        )  # fmt: skip

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        return self.tile_regions(batch) if isinstance(batch, list) else batch

    def tile_regions(self, samples: list[dict]) -> dict:
        """Whole regions → ``img_size`` tiles (padded), stacked: ``image`` ``[N, 2, C, s, s]``, ``mask`` ``[N, 1, s, s]``."""
        images, masks = [], []
        s = self.img_size
        for sample in samples:
            image, mask = pad_to(sample["image"], sample["mask"], s, self.ignore_index)
            images.append(image.unfold(-2, s, s).unfold(-2, s, s).permute(2, 3, 0, 1, 4, 5).reshape(-1, *image.shape[:2], s, s))
            masks.append(mask.unfold(-2, s, s).unfold(-2, s, s).permute(1, 2, 0, 3, 4).reshape(-1, 1, s, s))
        return {"image": torch.cat(images), "mask": torch.cat(masks)}

    def plot(self, sample: dict, *args):
        """Date 1 | date 2 | reference | prediction of one sample in our ``[C, T, H, W]`` layout
        (TerraTorch's validation logging calls this; TorchGeo's OSCD plot expects ``[T, C, H, W]``)."""
        rgb = [self.band_names.index(b) for b in ("B04", "B03", "B02") if b in self.band_names]
        if len(rgb) != 3:
            return None  # no true-colour bands to draw
        prediction = sample.get("prediction", sample["mask"])
        return segmentation_figure(
            sample["image"][None].cpu(), sample["mask"][None].cpu(), prediction[None].cpu(), rgb, 2, ["no_change", "change"]
        )

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        image = batch["image"].float()  # [B, T, C, H, W]
        mean = self.mean.to(image.device)[None, None, :, None, None]
        std = self.std.to(image.device)[None, None, :, None, None]
        padding = batch["mask"] == self.ignore_index
        image = ((image - mean) / std).masked_fill(padding[:, None], 0.0)  # padded pixels: the band mean
        mask = batch["mask"][:, 0].long()
        image = image.permute(0, 2, 1, 3, 4)  # → [B, C, T, H, W], TerraTorch's temporal layout
        if self.trainer is not None and self.trainer.training:  # random flips, per sample
            for dim in (-1, -2):
                flip = torch.rand(image.shape[0], device=image.device) < 0.5
                image = torch.where(flip[:, None, None, None, None], image.flip(dim), image)
                mask = torch.where(flip[:, None, None], mask.flip(dim), mask)
        return {"image": image, "mask": mask}

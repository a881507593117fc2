"""Images-only pretraining corpora: SSL4EO-S12 and BigEarthNet-S2 on TorchGeo's datasets, fMoW-Sentinel on ours.

Each datamodule yields ``{"image": [B, len(bands), img_size, img_size]}`` (no labels), which is
what ``SpectralMAETask`` trains on. What they share (``PretrainingCorpusDataModule``):

* ``bands`` are our names (``B01`` … ``B12``, ``B8A``), read into the model's order whatever the
  files' order; an unknown or missing band is an error naming the corpus's bands.
* In the loader workers (CPU): the selected bands, then MAE's ``RandomResizedCrop`` to
  ``img_size`` (``crop_scale``, aspect 3/4–4/3; ``[1, 1]``: no crop) for training, a resize of the
  whole image for validation — so only ``img_size`` pixels travel to the accelerator.
* After the transfer (on the accelerator, TorchGeo's ``aug``): per-band standardisation with the
  corpus's published statistics (``CORPUS_STATISTICS``, by band name), and random horizontal and
  vertical flips in training (``flips: false`` turns them off).
* ``num_workers`` with persistent workers (TorchGeo's loader) and pinned memory on CUDA.

Subclasses of TorchGeo's datasets, where TorchGeo falls short for pretraining, say why in one line.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import kornia.augmentation as K
import numpy as np
import rasterio
import torch
import torchvision.transforms.v2 as T
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from torch.utils.data import DataLoader, Subset
from torchgeo.datamodules import NonGeoDataModule
from torchgeo.datasets import SSL4EOS12, BigEarthNet, DatasetNotFoundError, NonGeoDataset

from terratorch_specmae.datamodules.benchmarks import BIGEARTHNET_S2, check_bands, require_training_batches

SENTINEL2_L1C = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
SENTINEL2_L2A = tuple(b for b in SENTINEL2_L1C if b != "B10")



def _published(bands: Sequence[str], means: Sequence[float], stds: Sequence[float]) -> dict[str, tuple[float, float]]:
    assert len(bands) == len(means) == len(stds)
    return {b: (float(m), float(s)) for b, m, s in zip(bands, means, stds)}


#: Published per-band mean and standard deviation (reflectance × 10⁴) of each corpus, by band name.
#: SSL4EO-S12: zhu-xlab/SSL4EO-S12, src/benchmark/pretrain_ssl/datasets/SSL4EO/ssl4eo_dataset.py
#: (S2C_MEAN/S2C_STD, S2A_MEAN/S2A_STD, "calculated from 50k data"). BigEarthNet-S2: the
#: BigEarthNet authors' BAND_STATS (rsim/bigearthnet-models-tf, BigEarthNet.py; TorchGeo's
#: SeasonalContrastS2DataModule uses the same numbers). fMoW-Sentinel: SatMAE's.
CORPUS_STATISTICS: dict[str, dict[str, tuple[float, float]]] = {
    "ssl4eo_s12_s2c": _published(
        SENTINEL2_L1C,
        [1605.57504906, 1390.78157673, 1314.8729939, 1363.52445545, 1549.44374991, 2091.74883118, 2371.7172463,
         2299.90463006, 2560.29504086, 830.06605044, 22.10351321, 2177.07172323, 1524.06546312],
        [786.78685367, 850.34818441, 875.06484736, 1138.84957046, 1122.17775652, 1161.59187054, 1274.39184232,
         1248.42891965, 1345.52684884, 577.31607053, 51.15431158, 1336.09932639, 1136.53823676],
    ),
    "ssl4eo_s12_s2a": _published(
        SENTINEL2_L2A,
        [752.40087073, 884.29673756, 1144.16202635, 1297.47289228, 1624.90992062, 2194.6423161, 2422.21248945,
         2517.76053101, 2581.64687018, 2645.51888987, 2368.51236873, 1805.06846033],
        [1108.02887453, 1155.15170768, 1183.6292542, 1368.11351514, 1370.265037, 1355.55390699, 1416.51487101,
         1474.78900051, 1439.3086061, 1582.28010962, 1455.52084939, 1343.48379601],
    ),
    # SatMAE's fMoW-Sentinel statistics (sustainlab-group/SatMAE, util/datasets.py, SentinelIndividualImageDataset)
    "fmow_sentinel": _published(
        SENTINEL2_L1C,
        [1370.19151926, 1184.3824625, 1120.77120066, 1136.26026392, 1263.73947144, 1645.40315151, 1846.87040806,
         1762.59530783, 1972.62420416, 582.72633433, 14.77112979, 1732.16362238, 1247.91870117],
        [633.15169573, 650.2842772, 712.12507725, 965.23119807, 948.9819932, 1108.06650639, 1258.36394548,
         1233.1492281, 1364.38688993, 472.37967789, 14.3114637, 1310.36996126, 1087.6020813],
    ),
    "bigearthnet_s2": _published(
        BIGEARTHNET_S2,
        [340.76769064, 429.9430203, 614.21682446, 590.23569706, 950.68368468, 1792.46290469, 2075.46795189,
         2218.94553375, 2266.46036911, 2246.0605464, 1594.42694882, 1009.32729131],
        [554.81258967, 572.41639287, 582.87945694, 675.88746967, 729.89827633, 1096.01480586, 1273.45393088,
         1365.45589904, 1356.13789355, 1302.3292881, 1079.19066363, 818.86747235],
    ),
}


def read_raster(path: Path, read: Callable, corpus: str, what: str):
    """``read(dataset)`` of the raster at ``path``. GDAL's errors on a damaged file (a truncated GeoTIFF fails to
    open when its header is cut, and opens but fails to read when its pixel data is) become an ``OSError`` that
    names the file, not GDAL's bare "Read failed"."""
    try:
        with rasterio.open(path) as f:
            return read(f)
    except (RasterioError, CPLE_BaseError) as err:
        gdal = err.__cause__ if isinstance(err.__cause__, (RasterioError, CPLE_BaseError)) else err
        size, gdal = f"{path.stat().st_size} bytes" if path.is_file() else "not a file", str(gdal).rstrip(".")
        raise OSError(
            f"{corpus}: {what} {str(path.absolute())!r} is unreadable ({size}; GDAL: {gdal}): expected a complete "
            "GeoTIFF, got a truncated or corrupt file. Download or extract it again."
        ) from err


FMOW_SPLITS = {"train": "train.csv", "val": "val.csv", "test": "test_gt.csv"}
FMOW_FOLDER = "fmow-sentinel"  #: the folder name SatMAE's CSV paths start with


class FMoWSentinel(NonGeoDataset):
    """fMoW-Sentinel (SatMAE's Sentinel-2 fMoW) as SatMAE lays it out, images only; TorchGeo has no reader for it.

    ``root`` is the ``fmow-sentinel`` folder: ``train.csv``, ``val.csv``, ``test_gt.csv`` (columns
    ``category, location_id, image_id, timestamp, polygon, image_path``, after an unnamed index
    column) and ``train/<category>/<category>_<location>/<category>_<location>_<image>.tif`` …;
    ``image_path`` (``fmow-sentinel/train/…``) is read with its first folder standing for ``root``
    (whatever ``root`` is called); other relative paths are under ``root``.
    Each GeoTIFF holds the 13 Sentinel-2 L1C bands in wavelength order (B01 … B8A, B09, B10, B11, B12)
    at its own size; ``bands`` (our names) are read, in that order.
    """

    def __init__(self, root: str = "data/fmow-sentinel", split: str = "train", bands: Sequence[str] | None = None,
                 transforms=None) -> None:  # fmt: skip
        if split not in FMOW_SPLITS:
            raise ValueError(f"fMoW-Sentinel split must be one of {list(FMOW_SPLITS)}, got {split!r}.")
        self.root, self.split, self.transforms = Path(root), split, transforms
        self.band_names = tuple(check_bands(bands or SENTINEL2_L2A, SENTINEL2_L1C, "fMoW-Sentinel"))
        table = self.root / FMOW_SPLITS[split]
        if not table.exists():
            raise FileNotFoundError(f"fMoW-Sentinel: {table} is missing (root must be the fmow-sentinel folder with its CSVs).")
        with open(table, newline="") as f:
            reader = csv.DictReader(f)
            if "image_path" not in (reader.fieldnames or []):
                raise ValueError(f"fMoW-Sentinel: {table} has columns {reader.fieldnames}; expected an 'image_path' column.")
            self.paths = [row["image_path"] for row in reader]
        if not self.paths:
            raise ValueError(f"fMoW-Sentinel: {table} lists no images.")

    def __len__(self) -> int:
        return len(self.paths)

    def locate(self, image_path: str) -> Path:
        """The file of a CSV ``image_path``: one place, never a guess. SatMAE's paths start with the dataset
        folder's name (``fmow-sentinel/train/…``): that part is ``root``, whatever ``root`` is called (a renamed
        copy reads its own files, not a sibling's). Other relative paths are under ``root``; absolute ones as given."""
        relative = PurePosixPath(image_path.replace("\\", "/"))
        if relative.is_absolute():
            path = Path(image_path)
        elif relative.parts and relative.parts[0] in (FMOW_FOLDER, self.root.name):
            path = self.root.joinpath(*relative.parts[1:])
        else:
            path = self.root / relative
        if not path.exists():
            raise FileNotFoundError(f"fMoW-Sentinel: image {image_path!r} not found at {str(path)!r}.")
        return path

    def __getitem__(self, index: int) -> dict:
        path = self.locate(self.paths[index])

        def read(f) -> np.ndarray:
            if f.count != len(SENTINEL2_L1C):
                raise ValueError(f"fMoW-Sentinel: {path} has {f.count} bands; expected the 13 Sentinel-2 L1C bands.")
            return f.read([SENTINEL2_L1C.index(b) + 1 for b in self.band_names]).astype(np.float32)

        image = read_raster(path, read, "fMoW-Sentinel", "the image")
        sample = {"image": torch.from_numpy(image)}
        return self.transforms(sample) if self.transforms is not None else sample


def ssl4eo_file_band(band: str) -> str:
    """Our band name → SSL4EO-S12's file name stem (``B01`` → ``B1``, ``B8A`` → ``B8A``)."""
    return re.sub(r"^B0(\d)$", r"B\1", band)


class CorpusCrop:
    """A sample's ``image`` ``[C, H, W]`` → the ``band_index`` channels as float32, cropped and resized to
    ``size``: a random resized crop (area ``scale``, aspect 3/4–4/3, MAE's) in training, the whole image
    resized otherwise (and in training when ``scale`` is ``[1, 1]``); ``size=None`` keeps the file's size. Drops everything but the image (pretraining uses no labels)."""

    def __init__(
        self, band_index: Sequence[int] | None, size: int | None, train: bool, scale: Sequence[float],
        file_bands: Sequence[str] | None = None, corpus: str = "corpus",
    ) -> None:  # fmt: skip
        self.band_index = None if band_index is None else list(band_index)
        self.file_bands, self.corpus = None if file_bands is None else list(file_bands), corpus
        self.size, self.train, self.scale = size, train, tuple(scale)
        if size is None:  # the bands only, at the file's size (what corpus shards store)
            self.crop = torch.nn.Identity()
        elif train and self.scale != (1.0, 1.0):
            self.crop = T.RandomResizedCrop(size, scale=self.scale, ratio=(3 / 4, 4 / 3), antialias=True)
        else:
            self.crop = T.Resize((size, size), antialias=True)

    def __call__(self, sample: dict) -> dict:
        image = sample["image"]
        # a band file missing would shift every band after it
        if self.file_bands is not None and image.shape[0] != len(self.file_bands):
            raise ValueError(
                f"{self.corpus}: a sample has {image.shape[0]} channels; expected {len(self.file_bands)}, the bands "
                f"{self.file_bands} (a band file is missing or extra)."
            )
        if self.band_index is not None:
            image = image[self.band_index]
        return {"image": self.crop(image.float())}


class PretrainingCorpusDataModule(NonGeoDataModule):
    """What the corpus datamodules share (see the module docstring); subclasses build the datasets."""

    corpus = ""  #: the corpus's name in messages
    available_bands: tuple[str, ...] = ()

    def __init__(
        self,
        dataset_class: type,
        band_names: Sequence[str] | None,
        statistics: dict[str, tuple[float, float]],
        img_size: int,
        crop_scale: Sequence[float],
        batch_size: int,
        num_workers: int,
        val_samples: int,
        flips: bool = True,
        **kwargs,
    ) -> None:
        bands = check_bands(band_names or SENTINEL2_L2A, self.available_bands, self.corpus)
        if len(crop_scale) != 2 or not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"{self.corpus} crop_scale must be [min, max] with 0 < min <= max <= 1, got {list(crop_scale)}.")
        if img_size < 1:
            raise ValueError(f"{self.corpus} img_size must be positive, got {img_size}.")
        if val_samples < 0:
            raise ValueError(f"{self.corpus} val_samples must be >= 0, got {val_samples}.")
        super().__init__(dataset_class, batch_size, num_workers, **kwargs)
        self.band_names, self.img_size, self.crop_scale, self.val_samples = bands, img_size, list(crop_scale), val_samples
        self.statistics = {b: statistics[b] for b in bands}  #: the published (mean, std) of each band, as given
        self.mean = torch.tensor([statistics[b][0] for b in bands])
        self.std = torch.tensor([statistics[b][1] for b in bands])
        normalize = K.Normalize(mean=self.mean, std=self.std)
        flips = [K.RandomHorizontalFlip(), K.RandomVerticalFlip()] if flips else []
        self.train_aug = K.AugmentationSequential(normalize, *flips, data_keys=None, keepdim=True)
        self.aug = K.AugmentationSequential(normalize, data_keys=None, keepdim=True)

    @property
    def means(self) -> list[float]:
        """The per-band means the batches are standardised with (SpectralMAETask hands them to saliency masking)."""
        return self.mean.tolist()

    @property
    def stds(self) -> list[float]:
        return self.std.tolist()

    def transforms(self, train: bool, file_bands: Sequence[str], crop: bool = True) -> CorpusCrop:
        """The workers' transform: ``bands`` out of ``file_bands``, then the crop (``crop=False``: none, the file's size)."""
        index = [list(file_bands).index(b) for b in self.band_names]
        size = self.img_size if crop else None
        band_index = None if index == list(range(len(file_bands))) else index
        return CorpusCrop(band_index, size, train, self.crop_scale, file_bands, self.corpus)

    def held_out(self, n: int, from_training: bool = False, units: tuple[str, str] = ("sample", "samples"),
                 where: str | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """The rest and ``val_samples`` of ``n`` indices (a seeded draw, the same on every rank), sorted; numpy
        arrays, which forked loader workers share rather than copy (a list's ints would be touched and copied).

        ``from_training``: the held-out items (``units``: singular, plural) are taken out of the training set, so at
        most half of them are (``n // 2``; training keeps the larger share): asking for more warns, saying how many
        were asked and taken; with one item (``where``: the folder searched) nothing can be split: an error unless
        ``val_samples`` is 0."""
        k = min(self.val_samples, n)
        if from_training and self.val_samples > n // 2:
            where = f" under {where!r}" if where else ""
            if n < 2:
                raise ValueError(
                    f"{self.corpus}: val_samples={self.val_samples} holds {units[1]} out of training for validation, "
                    f"but {n} {units[n != 1]} {'was' if n == 1 else 'were'} found{where}: expected at "
                    "least 2, so that training and validation each get one. Set val_samples: 0 (no validation) or "
                    "point root at a larger copy."
                )
            k = n // 2
            warnings.warn(
                f"{self.corpus}: val_samples={self.val_samples} asks to hold out {self.val_samples} of the {n} "
                f"{units[1]} found{where} for validation, which would leave training "
                f"{max(n - self.val_samples, 0)}; holding out {k} (half, at most) and training on {n - k}. Set "
                f"val_samples <= {k} to choose the split.",
                stacklevel=2,
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).numpy()
        return np.sort(order[k:]), np.sort(order[:k])

    def _dataloader_factory(self, split: str) -> DataLoader | list:
        if split == "val" and self.val_dataset is not None and len(self.val_dataset) == 0:
            return []  # val_samples: 0 — no validation (Lightning skips an empty list)
        loader = super()._dataloader_factory(split)
        if torch.cuda.is_available() and not loader.pin_memory:  # page-locked batches copy to the GPU asynchronously
            loader = DataLoader(
                loader.dataset, batch_size=loader.batch_size, shuffle=split == "train", num_workers=self.num_workers,
                collate_fn=self.collate_fn, drop_last=split == "train", persistent_workers=self.num_workers > 0,
                pin_memory=True,
            )  # fmt: skip
        return loader

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate"):
            self.train_dataset, self.val_dataset = self.build(stage)
            if stage == "fit":
                self.check_training_batches()
        else:
            raise ValueError(f"{self.corpus} is a pretraining corpus (images only): it has no '{stage}' stage.")

    def check_training_batches(self) -> None:
        """Fail when an epoch would train nothing (fewer samples per process than one batch)."""
        require_training_batches(self, self.corpus)

    def build(self, stage: str, crop: bool = True):
        """The (training, validation) datasets; ``crop=False``: the selected bands at the files' size, uncropped
        (what :func:`~terratorch_specmae.datamodules.streaming.write_corpus_shards` stores)."""
        raise NotImplementedError


SSL4EO_SPLITS = ("s2c", "s2a")
SSL4EO_LAYOUT = (
    "root/{split}/<7-digit location, e.g. 0000000>/<season folder, e.g. 20200305T100031_20200305T100033_T32TQM>/"
    "B1.tif … B12.tif (root is the folder that holds the split folders 's2c' and/or 's2a')"
)


class SSL4EOLayoutError(DatasetNotFoundError):
    """SSL4EO-S12's images are not where ``root`` and ``split`` say: TorchGeo's not-found error (a subclass, so
    ``except DatasetNotFoundError`` still catches it) with our message: the layout expected, what ``root`` holds,
    and the folder that looks right where one is near."""

    def __init__(self, message: str) -> None:
        FileNotFoundError.__init__(self, message)


def _is_location(name: str) -> bool:
    return re.fullmatch(r"\d{7}", name) is not None


def _entries(folder: Path, limit: int = 2000) -> list[Path]:
    """Up to ``limit`` entries of ``folder`` (none where it is not a readable folder)."""
    try:
        out = []
        for entry in folder.iterdir():
            out.append(entry)
            if len(out) == limit:
                break
        return out
    except OSError:
        return []


def _holds_locations(folder: Path) -> bool:
    """Whether ``folder`` is an SSL4EO-S12 split folder: 7-digit location folders in it."""
    try:
        return folder.is_dir() and any(_is_location(p.name) and p.is_dir() for p in folder.iterdir())
    except OSError:
        return False


def _holds_tifs(folder: Path) -> bool:
    return any(p.suffix.lower() in (".tif", ".tiff") and p.is_file() for p in _entries(folder, 200))


def ssl4eo_layout_message(root: Path, split: str) -> str:
    """Why ``root/split`` holds no SSL4EO-S12 location: the layout expected, what was found, and, where the
    folders around ``root`` tell, the ``root`` (and ``split``) that look right."""
    full = root.absolute()
    expected = f"SSL4EO-S12: no {split!r} images under root {str(root)!r}; expected {SSL4EO_LAYOUT.format(split=split)}"
    if not full.exists():
        got = f"{full} does not exist"
    elif not full.is_dir():
        got = f"{full} is a file, not a folder"
    else:
        names = sorted(p.name for p in _entries(full, 200))
        shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
        got = f"{full} holds {shown}" if names else f"{full} is empty"
        if (full / split).is_dir():
            inside = sorted(p.name for p in _entries(full / split, 200))
            got += f"; its {split!r} folder holds no 7-digit location folders" + (
                f" ({', '.join(inside[:5])}{', …' if len(inside) > 5 else ''})" if inside else " (it is empty)"
            )
    return f"{expected}, got: {got}.{_ssl4eo_suggestion(full, split)}"


def _ssl4eo_suggestion(full: Path, split: str) -> str:
    def root_and_split(candidate: Path, name: str) -> str:
        if name == split or _holds_locations(candidate / split):
            return f"root: {str(candidate)!r}"
        if name in SSL4EO_SPLITS:
            return f"root: {str(candidate)!r} with split: {name!r}"
        return f"root: {str(candidate)!r} (its split folder there is {name!r}; this reader expects {split!r})"

    if not full.is_dir():
        return ""
    others = [s for s in SSL4EO_SPLITS if s != split and _holds_locations(full / s)]
    if others:
        return f" root is right but holds {others[0]!r}, not {split!r}: set split: {others[0]!r}."
    # too deep: root is a split folder, a location folder or a season folder
    parents = full.parents
    if _holds_locations(full):
        return f" root looks like a split folder (it holds location folders), one level too deep: set " \
               f"{root_and_split(full.parent, full.name)}."
    seasons = [p for p in _entries(full, 50) if p.is_dir()]
    if len(parents) >= 2 and any(_holds_tifs(p) for p in seasons[:5]):
        return f" root looks like one location's folder, two levels too deep: set " \
               f"{root_and_split(parents[1], parents[0].name)}."
    if len(parents) >= 3 and _holds_tifs(full):
        return f" root looks like one season's folder (band files in it), three levels too deep: set " \
               f"{root_and_split(parents[2], parents[1].name)}."
    # too shallow: the corpus root is a folder or two below root
    level, budget = [full], 2000
    for depth in (1, 2):
        below = []
        for folder in level:
            for child in _entries(folder, budget):
                budget -= 1
                if not child.is_dir():
                    continue
                for name in (split, *[s for s in SSL4EO_SPLITS if s != split]):
                    if (child / name).is_dir() and _holds_locations(child / name):
                        too = "one level" if depth == 1 else "two levels"
                        return f" root looks {too} too shallow: set {root_and_split(child, name)}."
                below.append(child)
            if budget <= 0:
                return ""
        level = below
    return ""


class SSL4EOS12Images(SSL4EOS12):
    """TorchGeo's SSL4EO-S12 (``root/<split>/<7-digit location>/<season folder>/B1.tif …``), images only.

    Subclassed because TorchGeo's class always reports 251,079 locations and looks for the first
    ten to decide the data is there (a partial copy or a shard fails), draws its seasons with
    Python's ``random`` and reads every band. Here the locations are the folders present,
    ``seasons="all"`` makes each location's seasons separate samples and ``"random"`` draws one
    of them per visit (``torch``'s generator, so ``seed_everything`` governs it), and only
    ``bands`` are read (``bands`` in our names). The listing is kept in numpy arrays (a few bytes
    per image, no Python object per folder that forked loader workers would copy) and can be
    shared: ``listing=other.listing`` reuses another instance's scan.
    """

    def __init__(
        self,
        root: str = "data/ssl4eo_s12",
        split: str = "s2c",
        seasons: str = "all",
        bands: Sequence[str] | None = None,
        transforms=None,
        download: bool = False,
        checksum: bool = False,
        listing: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if split not in ("s2c", "s2a"):
            raise ValueError(f"SSL4EO-S12 split for Sentinel-2 pretraining must be 's2c' (L1C) or 's2a' (L2A), got {split!r}.")
        if seasons not in ("all", "random"):
            raise ValueError(f"SSL4EO-S12 seasons must be 'all' (every season a sample) or 'random' (one per visit), got {seasons!r}.")
        available = SENTINEL2_L1C if split == "s2c" else SENTINEL2_L2A
        self.band_names = tuple(check_bands(bands or available, available, f"SSL4EO-S12 {split}"))
        self.listing = listing  # read by _verify: a shared listing needs no look at the folder
        super().__init__(root, split, 1, transforms, download, checksum)
        self.seasons = seasons
        self.folder = Path(root) / split
        self.listing = listing if listing is not None else self.scan(self.folder)
        self.locations, self.season_names, counts = self.listing
        self.season_counts = counts
        if seasons == "all":  # [N, 2]: (location index, season index) per sample
            location = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
            first = np.cumsum(counts) - counts
            self.samples = np.stack([location, np.arange(len(location)) - np.repeat(first, counts)], axis=1)
        else:  # season -1: drawn at each visit
            self.samples = np.stack([np.arange(len(counts)), np.full(len(counts), -1)], axis=1)

    @staticmethod
    def scan(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(location names [L] (bytes), season folder names [L, S] (bytes), seasons per location [L])``."""
        locations = sorted(p.name for p in folder.iterdir() if re.fullmatch(r"\d{7}", p.name) and p.is_dir())
        seasons = [sorted(p.name for p in (folder / loc).iterdir() if p.is_dir()) for loc in locations]
        empty = [loc for loc, names in zip(locations, seasons) if not names]
        if empty:
            raise ValueError(f"SSL4EO-S12: locations without season folders under {folder}: {empty[:5]}.")
        width = max((len(n) for names in seasons for n in names), default=1)
        table = np.zeros((len(locations), max((len(n) for n in seasons), default=0)), dtype=f"S{width}")
        for row, names in enumerate(seasons):
            table[row, : len(names)] = names
        return np.array(locations, dtype="S7"), table, np.array([len(n) for n in seasons], dtype=np.int64)

    def _verify(self) -> None:
        """Extracted files of any location are enough (TorchGeo's looks for locations 0000000–0000009);
        otherwise TorchGeo's check: extract downloaded archives, download if asked, or its not-found error."""
        if self.listing is not None:
            return
        folder = Path(self.root) / self.split
        if _holds_locations(folder):
            return
        try:
            super()._verify()
        except DatasetNotFoundError:
            raise SSL4EOLayoutError(ssl4eo_layout_message(Path(self.root), self.split)) from None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        location, season = (int(v) for v in self.samples[index])
        if season < 0:
            season = int(torch.randint(int(self.season_counts[location]), ()))
        directory = self.folder / self.locations[location].decode() / self.season_names[location, season].decode()
        channels = []
        for band in self.band_names:
            path = directory / f"{ssl4eo_file_band(band)}.tif"
            if not path.exists():
                raise FileNotFoundError(f"SSL4EO-S12: {path} is missing (band {band} of {directory}).")
            # TorchGeo's read: every band at 264 × 264 px
            channels.append(read_raster(path, lambda f: f.read(1, out_shape=(self.size, self.size)).astype(np.float32),
                                        "SSL4EO-S12", f"band {band}'s file"))  # fmt: skip
        sample = {"image": torch.from_numpy(np.stack(channels))}
        return self.transforms(sample) if self.transforms is not None else sample


class SSL4EOS12PretrainDataModule(PretrainingCorpusDataModule):
    """SSL4EO-S12 Sentinel-2 (L1C ``s2c``, 13 bands, or L2A ``s2a``, 12) for pretraining, images only.

    ``seasons``: ``"all"`` — each location's four seasonal images are four samples (an epoch sees
    each image once); ``"random"`` — one random season per location each time it is drawn (an
    epoch is one image per location; SSL4EO-S12's own season-as-augmentation). ``val_samples``
    locations (a seeded draw) are held out for the validation loss, all their seasons.

    The held-out locations come out of training, so at most half of the locations found are held out: on a
    small copy (fewer than ``2 × val_samples`` locations, e.g. the default 256 on a 300-location shard)
    ``n // 2`` are, with a warning that names ``val_samples`` and says how many were asked and taken;
    a copy of one location cannot be split, which is an error unless ``val_samples`` is 0 (no validation).

    ``root`` is the folder that holds the split folders (``root/s2c/0000000/<season>/B1.tif``); a ``root``
    a level or more too deep or too shallow is an error naming the layout and the folder that looks right.
    """

    corpus = "SSL4EO-S12"

    def __init__(
        self,
        root: str = "data/ssl4eo_s12",
        split: str = "s2c",
        bands: list[str] | None = None,
        seasons: str = "all",
        img_size: int = 128,
        crop_scale: list[float] = (0.2, 1.0),
        flips: bool = True,
        val_samples: int = 256,
        batch_size: int = 64,
        num_workers: int = 0,
        download: bool = False,
        checksum: bool = False,
    ) -> None:
        if split not in ("s2c", "s2a"):
            raise ValueError(f"SSL4EO-S12 split for Sentinel-2 pretraining must be 's2c' (L1C) or 's2a' (L2A), got {split!r}.")
        if seasons not in ("all", "random"):
            raise ValueError(f"SSL4EO-S12 seasons must be 'all' (every season a sample) or 'random' (one per visit), got {seasons!r}.")
        self.available_bands = SENTINEL2_L1C if split == "s2c" else SENTINEL2_L2A
        super().__init__(
            SSL4EOS12Images, bands, CORPUS_STATISTICS[f"ssl4eo_s12_{split}"], img_size, crop_scale, batch_size,
            num_workers, val_samples, flips, root=root, split=split, download=download, checksum=checksum,
        )  # fmt: skip
        self.seasons = seasons

    def build(self, stage: str, crop: bool = True):
        args = {**self.kwargs, "bands": self.band_names}
        train = SSL4EOS12Images(**args, seasons=self.seasons, transforms=self.transforms(True, self.band_names, crop))
        val = SSL4EOS12Images(**args, seasons="all", transforms=self.transforms(False, self.band_names, crop),
                              listing=train.listing)  # one scan of the folder  # fmt: skip
        _, val_locations = self.held_out(len(train.locations), True, ("location", "locations"), str(train.folder))
        train_ids = np.flatnonzero(~np.isin(train.samples[:, 0], val_locations))
        val_ids = np.flatnonzero(np.isin(val.samples[:, 0], val_locations))
        return Subset(train, train_ids), Subset(val, val_ids)


class BigEarthNetPretrainDataModule(PretrainingCorpusDataModule):
    """BigEarthNet v1 Sentinel-2 (TorchGeo's ``BigEarthNet``, 12 bands at 120 px) for pretraining, images only.

    Trains on the ``train_splits`` (default TorchGeo's ``train`` list; add ``val``/``test`` to
    pretrain on every patch, then validate on held-out training patches) and validates on
    ``val_samples`` patches (a seeded draw) of the ``val`` list (or of the training patches when
    ``val`` is among ``train_splits``; then at most half of the patches are held out, with a warning
    if ``val_samples`` asks for more, as SSL4EO-S12's locations). Labels are not read into the batch.
    """

    corpus = "BigEarthNet (Sentinel-2)"
    available_bands = BIGEARTHNET_S2

    def __init__(
        self,
        root: str = "data/bigearthnet",
        bands: list[str] | None = None,
        train_splits: list[str] = ("train",),
        img_size: int = 128,
        crop_scale: list[float] = (0.2, 1.0),
        flips: bool = True,
        val_samples: int = 1024,
        batch_size: int = 64,
        num_workers: int = 0,
        download: bool = False,
        checksum: bool = False,
    ) -> None:
        unknown = [s for s in train_splits if s not in ("train", "val", "test")]
        if unknown or not train_splits:
            raise ValueError(f"BigEarthNet train_splits must be among ['train', 'val', 'test'], got {list(train_splits)}.")
        super().__init__(
            BigEarthNet, bands, CORPUS_STATISTICS["bigearthnet_s2"], img_size, crop_scale, batch_size, num_workers,
            val_samples, flips, root=root, bands="s2", download=download, checksum=checksum,
        )  # fmt: skip
        self.train_splits = list(train_splits)

    def build(self, stage: str, crop: bool = True):
        def split(name: str, train: bool):
            return BigEarthNet(split=name, transforms=self.transforms(train, BIGEARTHNET_S2, crop), **self.kwargs)

        trains = [split(s, True) for s in self.train_splits]
        train = trains[0] if len(trains) == 1 else torch.utils.data.ConcatDataset(trains)
        if "val" in self.train_splits:  # validate on held-out training patches
            evals = [split(s, False) for s in self.train_splits]
            evaluation = evals[0] if len(evals) == 1 else torch.utils.data.ConcatDataset(evals)
            train_ids, val_ids = self.held_out(len(train), True, ("patch", "patches"),
                                              str(self.kwargs.get("root")))
            return Subset(train, train_ids), Subset(evaluation, val_ids)
        val = split("val", False)
        _, val_ids = self.held_out(len(val))
        return train, Subset(val, val_ids)


class FMoWSentinelPretrainDataModule(PretrainingCorpusDataModule):
    """fMoW-Sentinel (SatMAE's CSVs + 13-band GeoTIFFs, ``FMoWSentinel``) for pretraining, images only.

    Trains on ``train.csv``, validates on ``val_samples`` images (a seeded draw) of ``val.csv``.
    Normalisation: SatMAE's per-band mean and std of fMoW-Sentinel (SatMAE itself maps mean ± 2 std
    to [0, 1]; here, standardised as the other corpora). Images differ in size: the random resized
    crop (S2MAE/SatMAE: 96 px) or, for validation, a resize brings them to ``img_size``.
    """

    corpus = "fMoW-Sentinel"
    available_bands = SENTINEL2_L1C

    def __init__(
        self,
        root: str = "data/fmow-sentinel",
        bands: list[str] | None = None,
        img_size: int = 96,
        crop_scale: list[float] = (0.2, 1.0),
        flips: bool = True,
        val_samples: int = 1024,
        batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            FMoWSentinel, bands, CORPUS_STATISTICS["fmow_sentinel"], img_size, crop_scale, batch_size, num_workers,
            val_samples, flips, root=root,
        )  # fmt: skip

    def build(self, stage: str, crop: bool = True):
        def split(name: str, train: bool):
            return FMoWSentinel(split=name, bands=self.band_names, transforms=self.transforms(train, self.band_names, crop), **self.kwargs)

        train, val = split("train", True), split("val", False)
        _, val_ids = self.held_out(len(val))
        return train, Subset(val, val_ids)


__all__ = [
    "CORPUS_STATISTICS",
    "BigEarthNetPretrainDataModule",
    "CorpusCrop",
    "FMoWSentinel",
    "FMoWSentinelPretrainDataModule",
    "PretrainingCorpusDataModule",
    "SSL4EOS12Images",
    "SSL4EOS12PretrainDataModule",
]

"""Pretraining corpora streamed from LitData shards, for corpora that outgrow a machine's disk.

Two halves:

* :func:`write_corpus_shards` (command: ``specmae-shards``) reads a corpus datamodule
  (:class:`~terratorch_specmae.datamodules.pretraining_corpora.PretrainingCorpusDataModule`: SSL4EO-S12,
  BigEarthNet-S2, fMoW-Sentinel) once, where its files are, and writes its training and validation
  images — the datamodule's ``bands`` at the files' size, uncropped, as ``uint16`` (or ``float32``) —
  into LitData chunks: ``<out>/train/`` and ``<out>/val/``, each ``index.json`` + ``chunk-*.bin``. The
  band names and the corpus's published statistics go into each ``index.json`` (key
  ``terratorch_specmae``), so the shards describe themselves. The folder is new (an existing one is
  refused) and appears only once complete. Copy it to object storage with the provider's tool
  (``aws s3 sync``, ``gcloud storage rsync``, ``azcopy``).
* :class:`StreamingCorpusDataModule` reads such shards from a local folder or from ``s3://`` (and
  S3-compatible stores), ``gs://`` (with ``google-cloud-storage``) or ``azure://`` (with
  ``azure-storage-blob``) through LitData's ``StreamingDataset``: chunks are downloaded ahead of
  use into a local cache bounded by ``max_cache_size`` (evicted when full), each rank and loader
  worker reads its own part of a shuffled order, and LitData's ``StreamingDataLoader`` keeps its
  position in Lightning's checkpoints (a resumed run continues mid-epoch). The random resized crop
  runs in the workers and the standardisation and flips after the transfer, exactly as for the
  corpus datamodule the shards came from.

Why LitData rather than GDAL's ``/vsis3/``: a pretraining corpus is hundreds of thousands of small
GeoTIFFs (SSL4EO-S12: one file per band, 13 per image), and through ``/vsis3/`` every read is
several HTTP range requests (header, tile index, tiles) per file — latency-bound at thousands of
requests per batch, with listing and retry behaviour left to each worker. LitData reads a few
large sequential chunks per worker, prefetches them, shards the order across ranks and workers
with equal counts per rank (what DDP needs), bounds the local cache, and is Lightning's own
library; the cost is one conversion pass, which also fixes the band selection and dtype once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from terratorch_specmae.atomic import atomic_folder, atomic_write_text
from terratorch_specmae.datamodules.pretraining_corpora import CorpusCrop, PretrainingCorpusDataModule

METADATA_KEY = "terratorch_specmae"  #: our entry in each split's ``index.json``
SHARD_FORMAT = 1
SHARD_DTYPES = ("uint16", "float32")
SHARD_COMPRESSIONS = (None, "zstd")
SPLITS = ("train", "val")
#: LitData's optimize empties these work folders when it starts (default <tmp>/chunks, <tmp>/data)
LITDATA_WORK_FOLDERS = {"DATA_OPTIMIZER_CACHE_FOLDER": "chunks", "DATA_OPTIMIZER_DATA_CACHE_FOLDER": "data"}


def _litdata():
    try:
        import litdata
    except ImportError as error:  # an optional dependency: the `streaming` extra
        raise ImportError(
            "Corpus shards need LitData: pip install 'terratorch-specmae[streaming]' (or pip install litdata)."
        ) from error
    return litdata


class ShardSample:
    """``optimize``'s function: sample ``index`` of ``dataset`` → ``{"image": array of dtype}`` (picklable, for its workers)."""

    def __init__(self, dataset, dtype: str, corpus: str) -> None:
        self.dataset, self.dtype, self.corpus = dataset, dtype, corpus

    def __call__(self, index: int) -> dict:
        image = self.dataset[index]["image"]
        image = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        where = f"{self.corpus} sample {index}"
        if not np.isfinite(image).all():
            raise ValueError(f"{where} holds NaN or inf values; expected finite reflectances.")
        if self.dtype == "uint16":
            low, high = float(image.min()), float(image.max())
            if low < 0 or high > 65535 or not np.array_equal(image, np.round(image)):
                raise ValueError(
                    f"{where} has values in [{low}, {high}] that are not all integers in [0, 65535], so uint16 "
                    "shards would change them; expected integer reflectances (pass dtype='float32' to keep them)."
                )
        return {"image": np.ascontiguousarray(image.astype(self.dtype))}


def write_corpus_shards(
    datamodule: PretrainingCorpusDataModule,
    output_dir: str | Path,
    *,
    dtype: str = "uint16",
    chunk_bytes: str | int = "64MB",
    compression: str | None = None,
    num_workers: int = 1,
) -> Path:
    """Write ``datamodule``'s training and validation images (its ``bands``, uncropped) as LitData shards.

    ``output_dir`` must not exist; it appears only once both splits are written (a killed write
    leaves a hidden ``.<name>.*.tmp`` folder beside it, nothing else). SSL4EO-S12 must use
    ``seasons: all`` (each season a sample; ``random`` would freeze one draw per location).
    ``num_workers`` processes read the corpus (LitData's ``optimize``; spawned, so each imports the package
    once, ~20 s). LitData's work folders go to a temporary folder of ours (its defaults, ``<tmp>/chunks``
    and ``<tmp>/data``, would be emptied).
    ``compression="zstd"`` compresses each chunk (a real Sentinel-2 L2A scene: 1.42× smaller; decoded
    in the loader workers).
    Returns ``output_dir``.
    """
    litdata = _litdata()
    if not isinstance(datamodule, PretrainingCorpusDataModule):
        raise TypeError(f"write_corpus_shards needs a pretraining corpus datamodule; got {type(datamodule).__name__}.")
    if dtype not in SHARD_DTYPES:
        raise ValueError(f"Corpus shards dtype must be one of {list(SHARD_DTYPES)}, got {dtype!r}.")
    if getattr(datamodule, "seasons", "all") != "all":
        raise ValueError(
            f"{datamodule.corpus}: write shards with seasons 'all' (every season a sample), got {datamodule.seasons!r}."
        )
    if compression not in SHARD_COMPRESSIONS:
        raise ValueError(f"Corpus shards compression must be one of {list(SHARD_COMPRESSIONS)}, got {compression!r}.")
    if "://" in str(output_dir):
        raise ValueError(
            f"Write corpus shards to a local folder, then copy it to object storage; got {str(output_dir)!r}."
        )
    out = Path(output_dir)
    if out.exists():
        raise FileExistsError(f"{out} exists; corpus shards are written to a new folder (remove it or choose another).")
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1 (processes that read the corpus), got {num_workers}.")
    train, val = datamodule.build("fit", crop=False)
    if len(train) == 0:
        raise ValueError(f"{datamodule.corpus}: the training split is empty; nothing to write.")
    metadata = {
        "format": SHARD_FORMAT,
        "corpus": datamodule.corpus,
        "bands": list(datamodule.band_names),
        "means": [datamodule.statistics[b][0] for b in datamodule.band_names],  # the published numbers, not float32
        "stds": [datamodule.statistics[b][1] for b in datamodule.band_names],
        "dtype": dtype,
        "compression": compression,
        "samples": {"train": len(train), "val": len(val)},
    }
    # LitData's optimize sets the process-wide start method (spawn: its workers start clean, as LitData's own
    # default; forking its threads could deadlock), so the caller's is put back afterwards. It also empties
    # its work folders, <tmp>/chunks and <tmp>/data by default, at start: they are pointed at a new
    # temporary folder of ours, so no folder this call did not create is touched.
    previous = multiprocessing.get_start_method(allow_none=True)
    saved_env = {name: os.environ.get(name) for name in LITDATA_WORK_FOLDERS}
    work = Path(tempfile.mkdtemp(prefix="specmae-shards-"))
    try:
        for name, folder_name in LITDATA_WORK_FOLDERS.items():
            os.environ[name] = str(work / folder_name)
        with atomic_folder(out) as folder:
            for split, dataset in zip(SPLITS, (train, val)):
                if len(dataset) == 0:
                    continue
                litdata.optimize(
                    fn=ShardSample(dataset, dtype, datamodule.corpus), inputs=list(range(len(dataset))),
                    output_dir=str(folder / split), chunk_bytes=chunk_bytes, compression=compression, num_workers=num_workers,
                    start_method="spawn", verbose=False,
                )  # fmt: skip
                index = folder / split / "index.json"
                content = json.loads(index.read_text())
                written = sum(chunk["chunk_size"] for chunk in content["chunks"])
                if written != len(dataset):  # LitData returns normally when its worker processes die
                    raise RuntimeError(
                        f"{datamodule.corpus}: the {split} shards hold {written} samples; expected {len(dataset)}. "
                        "LitData's worker processes failed (their error is printed above); spawned workers need the "
                        "calling program to be a file they can import (a script or specmae-shards, not `python -`)."
                    )
                content[METADATA_KEY] = {**metadata, "split": split}
                atomic_write_text(index, json.dumps(content, sort_keys=True))
    finally:
        multiprocessing.set_start_method(previous, force=True)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(work, ignore_errors=True)  # the temporary folder made above, nothing else
    return out


class ShardTransform:
    """A shard's item (``{"image": uint16/float32 array}``) → the corpus datamodule's worker transform."""

    def __init__(self, crop: CorpusCrop) -> None:
        self.crop = crop

    def __call__(self, item: dict) -> dict:
        return self.crop({"image": torch.from_numpy(np.asarray(item["image"], dtype=np.float32))})


#: The LitData item formats a split may declare: ``numpy`` (LitData's NumpySerializer reads a dtype, a shape and
#: raw bytes; no pickle). LitData also has serializers that unpickle (``pickle``, PyG graphs) or decode media
#: files; a shard folder is data, so nothing else is read.
SAFE_DATA_FORMATS = ("numpy",)


def check_index(index: dict, where: str) -> None:
    """Refuse a split whose ``index.json`` would make LitData run anything but our own plain reads.

    A shard folder from someone else's bucket is data: LitData deserializes each item with the serializer
    its ``index.json`` names, and some (``pickle``) run code from the file. Allowed: the item formats of
    :data:`SAFE_DATA_FORMATS`, LitData's PyTree loader, no compression or zstd, no encryption."""
    config = index.get("config") if isinstance(index, dict) else None
    if not isinstance(config, dict):
        raise ValueError(f"{where}/index.json has no LitData 'config' object; expected shards written by specmae-shards.")
    formats = config.get("data_format")
    if not isinstance(formats, list) or not formats or any(f not in SAFE_DATA_FORMATS for f in formats):
        raise ValueError(
            f"{where}/index.json declares item formats {formats!r}; refused before reading any item: corpus shards hold "
            f"only {list(SAFE_DATA_FORMATS)} items, and LitData's other serializers can run code from the file "
            "('pickle' unpickles it). Read only shards written by specmae-shards, from a source you trust."
        )
    for key, allowed in (("compression", SHARD_COMPRESSIONS), ("encryption", (None,)), ("item_loader", ("PyTreeLoader",))):
        if config.get(key) not in allowed:
            raise ValueError(f"{where}/index.json declares {key} {config.get(key)!r}; expected one of {list(allowed)}.")


class StreamingCorpusDataModule(PretrainingCorpusDataModule):
    """Pretraining on corpus shards written by :func:`write_corpus_shards`, local or in object storage.

    ``input_dir`` holds ``train/`` (and ``val/``, when the shards have a validation split): a
    local folder or a URL LitData reads (``s3://bucket/prefix``; ``gs://`` and ``azure://`` with their
    providers' Python clients installed; credentials from the environment or ``storage_options``). ``bands`` (default: all the shards
    hold) are taken by name, in that order; the statistics are the ones written with the shards.
    ``shuffle`` draws a new order each epoch from ``seed``, which must be the same on every rank
    (it is, from the YAML). ``cache_dir`` / ``max_cache_size``: where and how much of the remote
    chunks are kept locally (LitData's default folder when ``None``).
    """

    corpus = "Corpus shards"

    def __init__(
        self,
        input_dir: str,
        bands: list[str] | None = None,
        img_size: int = 128,
        crop_scale: list[float] = (0.2, 1.0),
        flips: bool = True,
        batch_size: int = 64,
        num_workers: int = 0,
        shuffle: bool = True,
        seed: int = 42,
        cache_dir: str | None = None,
        max_cache_size: str | int = "50GB",
        storage_options: dict | None = None,
    ) -> None:
        self.input_dir = str(input_dir).rstrip("/")
        self.shuffle, self.seed = shuffle, seed
        self.stream_options = {
            "cache_dir": cache_dir,
            "max_cache_size": max_cache_size,
            "storage_options": storage_options or {},
        }
        self.metadata = self.read_metadata()
        self.available_bands = tuple(self.metadata["bands"])
        self.corpus = f"Corpus shards {self.input_dir} ({self.metadata['corpus']})"
        statistics = {
            b: (m, s) for b, m, s in zip(self.metadata["bands"], self.metadata["means"], self.metadata["stds"])
        }
        super().__init__(
            _litdata().StreamingDataset, bands or self.available_bands, statistics, img_size, crop_scale, batch_size,
            num_workers, self.metadata["samples"]["val"], flips,
        )  # fmt: skip

    def split_dir(self, split: str) -> str:
        return f"{self.input_dir}/{split}"

    def open_split(self, split: str, *, shuffle: bool = False, transform=None):
        """LitData's dataset of one split, once its ``index.json`` passed :func:`check_index` (LitData fetches the
        index when the dataset is made; no item is read before the check) and, for the validation split, names
        the training split's bands and statistics."""
        dataset = _litdata().StreamingDataset(self.split_dir(split), shuffle=shuffle, seed=self.seed, transform=transform,
                                              **self.stream_options)  # fmt: skip
        index = json.loads(Path(dataset.input_dir.path, "index.json").read_text())
        check_index(index, self.split_dir(split))
        expected = getattr(self, "metadata", None)
        if expected is not None:
            found = index.get(METADATA_KEY) or {}
            for key in ("bands", "means", "stds"):
                if found.get(key) != expected.get(key):
                    raise ValueError(
                        f"{self.split_dir(split)}: its index.json names {key} {found.get(key)}, the training split's "
                        f"{expected.get(key)}; expected every split of one shard folder written together (specmae-shards)."
                    )
        return dataset

    def read_metadata(self) -> dict:
        """Our entry of ``train/index.json`` (LitData fetches the index into its cache for a remote ``input_dir``)."""
        train = self.split_dir("train")
        if "://" not in self.input_dir and not Path(train, "index.json").is_file():
            if Path(self.input_dir, "index.json").is_file():
                raise FileNotFoundError(
                    f"{self.input_dir} is one split's folder; input_dir is the folder holding train/ and val/ "
                    f"({Path(self.input_dir).parent})."
                )
            raise FileNotFoundError(
                f"{train}/index.json is missing; expected corpus shards written by specmae-shards "
                f"(train/ and val/ LitData folders) in {self.input_dir}."
            )
        index = Path(self.open_split("train").input_dir.path, "index.json")
        metadata = json.loads(index.read_text()).get(METADATA_KEY)
        if metadata is None or metadata.get("format") != SHARD_FORMAT:
            found = "none" if metadata is None else f"format {metadata.get('format')!r}"
            raise ValueError(
                f"{train}: its index.json has no '{METADATA_KEY}' entry of format {SHARD_FORMAT} ({found}); "
                "expected shards written by specmae-shards / write_corpus_shards."
            )
        return metadata

    def build(self, stage: str, crop: bool = True):
        bands = self.available_bands
        train = self.open_split(
            "train", shuffle=self.shuffle, transform=ShardTransform(self.transforms(True, bands, crop))
        )
        val = None
        if self.metadata["samples"]["val"]:
            val = self.open_split("val", transform=ShardTransform(self.transforms(False, bands, crop)))
        return train, val

    def check_training_batches(self) -> None:
        # the shards' count, not len(): LitData's length is already this rank's share, and it drops the
        # remainder under DDP (floor, where a DistributedSampler pads)
        n, processes = self.metadata["samples"]["train"], self.trainer.world_size if self.trainer is not None else 1
        if n // processes < self.batch_size:
            raise ValueError(
                f"{self.corpus}: the training shards hold {n} samples, {n // processes} per process over {processes}, "
                f"fewer than batch_size {self.batch_size}, so no optimizer step would run. Expected batch_size <= "
                f"{max(n // processes, 1)} (or more training data)."
            )

    def _dataloader_factory(self, split: str):
        dataset = self.train_dataset if split == "train" else self.val_dataset
        if dataset is None:
            return []  # no validation split in the shards: Lightning runs no validation
        # Not persistent: LitData hands the epoch (a new shuffle) to the dataset as the workers start.
        return _litdata().StreamingDataLoader(
            dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=self.collate_fn,
            pin_memory=torch.cuda.is_available(), drop_last=split == "train",
        )  # fmt: skip


__all__ = ["SAFE_DATA_FORMATS", "ShardSample", "ShardTransform", "StreamingCorpusDataModule", "check_index", "write_corpus_shards"]

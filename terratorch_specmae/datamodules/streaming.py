"""Pretraining corpora streamed from LitData shards, for corpora that outgrow a machine's disk.

Two halves:

* :func:`write_corpus_shards` (command: ``specmae shards``) reads a corpus datamodule
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
import time
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
                        "calling program to be a file they can import (a script or specmae shards, not `python -`)."
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
        raise ValueError(f"{where}/index.json has no LitData 'config' object; expected shards written by specmae shards.")
    formats = config.get("data_format")
    if not isinstance(formats, list) or not formats or any(f not in SAFE_DATA_FORMATS for f in formats):
        raise ValueError(
            f"{where}/index.json declares item formats {formats!r}; refused before reading any item: corpus shards hold "
            f"only {list(SAFE_DATA_FORMATS)} items, and LitData's other serializers can run code from the file "
            "('pickle' unpickles it). Read only shards written by specmae shards, from a source you trust."
        )
    for key, allowed in (("compression", SHARD_COMPRESSIONS), ("encryption", (None,)), ("item_loader", ("PyTreeLoader",))):
        if config.get(key) not in allowed:
            raise ValueError(f"{where}/index.json declares {key} {config.get(key)!r}; expected one of {list(allowed)}.")


def chunk_sizes(index: dict) -> dict[str, int | None]:
    """Each chunk file an ``index.json`` lists → its size on disk in bytes, ``None`` where the index cannot say.

    LitData's ``chunk_bytes`` is the size of the file as written, except for whole-file compression (a declared
    ``compression`` with no in-file ``compression_level``: ``chunk-*.zstd.bin``), where it is the size before
    compression; specmae shards writes in-file (``batch``) zstd frames, whose ``chunk_bytes`` is the file's size."""
    config = index.get("config") or {}
    on_disk = config.get("compression") is None or config.get("compression_level") in ("batch", "sample")
    sizes = {}
    for chunk in index.get("chunks") or []:
        size = chunk.get("chunk_bytes")
        sizes[str(chunk["filename"])] = int(size) if on_disk and isinstance(size, int) else None
    return sizes


def chunk_problem(path: str | Path, expected: int | None, index_path: str) -> OSError | ValueError | None:
    """The error for a chunk file that is missing or not the size ``index_path`` lists for it; ``None`` if it is."""
    if not os.path.isfile(path):
        listed = f" with {expected} bytes (chunk_bytes)" if expected is not None else ""
        return FileNotFoundError(
            f"Shard chunk {path} is missing: {index_path} lists it{listed}, found no file. Expected every chunk "
            "its index.json lists beside it; copy the shard folder again (an interrupted copy or sync?)."
        )
    size = os.path.getsize(path)
    if expected is None and size == 0:
        return ValueError(f"Shard chunk {path} is empty (0 bytes); expected the chunk {index_path} lists.")
    if expected is not None and size != expected:
        what = "truncated" if size < expected else "longer than its index says"
        return ValueError(
            f"Shard chunk {path} is {what}: {index_path} lists {expected} bytes (chunk_bytes), the file holds "
            f"{size}. Expected each chunk as specmae shards wrote it; copy the shard folder again."
        )
    return None


def check_chunks(folder: str | Path, index: dict) -> None:
    """Refuse a local split whose chunk files are not all there at the sizes its ``index.json`` lists (LitData
    would wait for a missing or short file, then time out naming neither, or read past the end of a damaged one)."""
    index_path = os.path.join(folder, "index.json")
    problems = [
        problem
        for name, expected in chunk_sizes(index).items()
        if (problem := chunk_problem(os.path.join(folder, name), expected, index_path)) is not None
    ]
    if problems:
        first, more = problems[0], len(problems) - 1
        also = f" ({more} more chunk file(s) of {folder} are missing or the wrong size too.)" if more else ""
        raise type(first)(f"{first}{also}")


def _checked_dataset_class():
    """LitData's ``StreamingDataset`` whose reads name the chunk file that is missing or truncated, made when
    first needed (LitData is an optional dependency) and importable by name (picklable, for loader workers)."""
    litdata = _litdata()

    class ShardStreamingDataset(litdata.StreamingDataset):
        """LitData's dataset of one split; a read whose chunk file is missing or of the wrong size raises an error
        naming that file, its size in the index and on disk, in place of LitData's wait timeout."""

        shard_chunks: dict[str, int | None] | None = None  # chunk_sizes() of the split's index, set by open_split
        shard_index = "index.json"

        def __getitem__(self, index):
            try:
                return super().__getitem__(index)
            except FileNotFoundError as error:  # LitData's ChunkWaitTimeoutError among them
                path, sizes = getattr(error, "path", None) or error.filename, self.shard_chunks or {}
                if path is not None and os.path.basename(str(path)) in sizes:
                    problem = chunk_problem(path, sizes[os.path.basename(str(path))], self.shard_index)
                    if problem is not None:
                        raise problem from error
                raise

    ShardStreamingDataset.__module__, ShardStreamingDataset.__qualname__ = __name__, "ShardStreamingDataset"
    return ShardStreamingDataset


def shard_dataset_class():
    """``ShardStreamingDataset``, this module's attribute once made (so pickle finds it by name)."""
    if "ShardStreamingDataset" not in globals():
        globals()["ShardStreamingDataset"] = _checked_dataset_class()
    return globals()["ShardStreamingDataset"]


def __getattr__(name: str):
    if name == "ShardStreamingDataset":  # made on first use, also when pickle looks it up in a spawned worker
        return shard_dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: How long, by default, an object-storage endpoint is tried before its shards are given up on (seconds)
CONNECT_TIMEOUT_S = 20.0
#: The longest one attempt waits for a connection or an answer, and the longest pause between attempts (seconds)
ATTEMPT_TIMEOUT_S, MAX_BACKOFF_S = 5.0, 4.0


def check_endpoint(url: str, storage_options: dict | None, timeout_s: float) -> None:
    """Make sure the S3 endpoint of ``url`` (an ``s3://`` object) answers within ``timeout_s`` seconds.

    LitData's S3 client retries up to 1,000 times (botocore's adaptive mode), so an endpoint that cannot be
    reached hangs the caller for a very long time. This asks once for ``url`` with botocore's client built from
    the same ``storage_options`` and environment (``AWS_ENDPOINT_URL``, ``~/.aws/config``), unsigned: any HTTP
    answer (even 403 or 404) counts as reachable, as LitData then reports what is wrong. Attempts time out after
    at most :data:`ATTEMPT_TIMEOUT_S` and pause between them (0.5 s, doubling, up to :data:`MAX_BACKOFF_S`), until
    ``timeout_s`` seconds have gone; then a ``ConnectionError`` names the endpoint and ``url``. Other schemes
    (``gs://``, ``azure://``) and Lightning data connections (``data_connection_id``, whose endpoint LitData asks
    Lightning for) are left to LitData."""
    if not url.startswith("s3://") or "data_connection_id" in (storage_options or {}):
        return
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    bucket, _, key = url.removeprefix("s3://").partition("/")
    options = {k: v for k, v in (storage_options or {}).items() if k != "config"}
    user_config = (storage_options or {}).get("config")
    start = time.monotonic()
    deadline, attempts, backoff, endpoint = start + timeout_s, 0, 0.5, None
    while True:
        per_try = max(0.1, min(ATTEMPT_TIMEOUT_S, deadline - time.monotonic()))
        config = Config(connect_timeout=per_try, read_timeout=per_try, signature_version=UNSIGNED)
        config = config.merge(Config(retries={"total_max_attempts": 1}))  # ours does the retrying, to a deadline
        config = user_config.merge(config) if user_config else config
        client = boto3.session.Session().client("s3", config=config, **options)
        endpoint = client.meta.endpoint_url
        attempts += 1
        try:
            client.head_object(Bucket=bucket, Key=key)
            return
        except ClientError:  # an HTTP answer: the endpoint is there
            return
        except (BotoConnectionError, HTTPClientError) as error:
            last = error
        pause = min(backoff, MAX_BACKOFF_S, deadline - time.monotonic())
        if pause <= 0:
            break
        time.sleep(pause)
        backoff *= 2
        if time.monotonic() >= deadline:
            break
    raise ConnectionError(
        f"Could not reach the S3 endpoint {endpoint} for {url}: {attempts} attempt(s) in "
        f"{time.monotonic() - start:.1f} s (connect_timeout_s={timeout_s:g}) got no answer, the last "
        f"{type(last).__name__}: {last}. Expected an endpoint that answers HTTP requests: check "
        "storage_options['endpoint_url'] or AWS_ENDPOINT_URL and the network (or raise connect_timeout_s)."
    )


class StreamingCorpusDataModule(PretrainingCorpusDataModule):
    """Pretraining on corpus shards written by :func:`write_corpus_shards`, local or in object storage.

    ``input_dir`` holds ``train/`` (and ``val/``, when the shards have a validation split): a
    local folder or a URL LitData reads (``s3://bucket/prefix``; ``gs://`` and ``azure://`` with their
    providers' Python clients installed; credentials from the environment or ``storage_options``). ``bands`` (default: all the shards
    hold) are taken by name, in that order; the statistics are the ones written with the shards.
    ``shuffle`` draws a new order each epoch from ``seed``, which must be the same on every rank
    (it is, from the YAML). ``cache_dir`` / ``max_cache_size``: where and how much of the remote
    chunks are kept locally (LitData's default folder when ``None``).

    A local ``input_dir`` is checked when each split is opened: every chunk file its ``index.json`` lists must be
    there at the size listed (``chunk_bytes``), or a ``FileNotFoundError`` / ``ValueError`` names the file, the
    size listed and the size found; a chunk that goes missing later is named the same way when it is read.
    ``connect_timeout_s`` (default :data:`CONNECT_TIMEOUT_S`, 20 s): for ``s3://``, how long the endpoint
    (``storage_options['endpoint_url']``, else ``AWS_ENDPOINT_URL`` / the AWS configuration) is tried before each
    split's ``index.json`` is handed to LitData, whose own client would retry up to 1,000 times; an endpoint that
    gives no HTTP answer in that time raises a ``ConnectionError`` naming it and the URL (see
    :func:`check_endpoint`). ``None`` skips the check. Chunk downloads during training keep LitData's retries.
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
        connect_timeout_s: float | None = CONNECT_TIMEOUT_S,
    ) -> None:
        if connect_timeout_s is not None and not connect_timeout_s > 0:
            raise ValueError(f"connect_timeout_s must be > 0 seconds (or None: no check), got {connect_timeout_s}.")
        self.input_dir = str(input_dir).rstrip("/")
        self.shuffle, self.seed = shuffle, seed
        self.connect_timeout_s = connect_timeout_s
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

    def open_split(self, split: str, *, shuffle: bool = False, transform=None, check_files: bool = True):
        """LitData's dataset of one split, once its ``index.json`` passed :func:`check_index` (LitData fetches the
        index when the dataset is made; no item is read before the check) and, for the validation split, names
        the training split's bands and statistics. A local split's chunk files are then checked against its index
        (:func:`check_chunks`; ``check_files``); an ``s3://`` endpoint must answer within ``connect_timeout_s``
        (:func:`check_endpoint`) before LitData fetches the index."""
        where = self.split_dir(split)
        if self.connect_timeout_s is not None:
            check_endpoint(f"{where}/index.json", self.stream_options["storage_options"], self.connect_timeout_s)
        dataset = shard_dataset_class()(where, shuffle=shuffle, seed=self.seed, transform=transform,
                                        **self.stream_options)  # fmt: skip
        index = json.loads(Path(dataset.input_dir.path, "index.json").read_text())
        check_index(index, where)
        dataset.shard_chunks, dataset.shard_index = chunk_sizes(index), f"{where}/index.json"
        expected = getattr(self, "metadata", None)
        if expected is not None:
            found = index.get(METADATA_KEY) or {}
            for key in ("bands", "means", "stds"):
                if found.get(key) != expected.get(key):
                    raise ValueError(
                        f"{where}: its index.json names {key} {found.get(key)}, the training split's "
                        f"{expected.get(key)}; expected every split of one shard folder written together (specmae shards)."
                    )
        if check_files and "://" not in where:
            check_chunks(where, index)
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
                f"{train}/index.json is missing; expected corpus shards written by specmae shards "
                f"(train/ and val/ LitData folders) in {self.input_dir}."
            )
        index = json.loads(Path(self.open_split("train", check_files=False).input_dir.path, "index.json").read_text())
        metadata = index.get(METADATA_KEY)
        if metadata is None or metadata.get("format") != SHARD_FORMAT:
            found = "none" if metadata is None else f"format {metadata.get('format')!r}"
            raise ValueError(
                f"{train}: its index.json has no '{METADATA_KEY}' entry of format {SHARD_FORMAT} ({found}); "
                "expected shards written by specmae shards / write_corpus_shards."
            )
        if "://" not in train:  # our shards: now their chunk files
            check_chunks(train, index)
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


__all__ = [
    "CONNECT_TIMEOUT_S", "SAFE_DATA_FORMATS", "ShardSample", "ShardTransform", "StreamingCorpusDataModule",
    "check_chunks", "check_endpoint", "check_index", "write_corpus_shards",
]  # fmt: skip

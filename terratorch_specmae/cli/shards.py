"""``specmae shards``: a pretraining corpus → LitData shards that ``StreamingCorpusDataModule`` streams.

    specmae shards <pretraining config.yaml> <out folder> [--root DIR] [--dtype uint16|float32]
                   [--num-workers N] [--chunk-bytes 64MB] [--compression zstd]

The corpus is the config's ``data`` section (a corpus datamodule: SSL4EO-S12, BigEarthNet-S2,
fMoW-Sentinel), as ``terratorch fit`` would build it, with ``--root`` replacing its ``root``;
SSL4EO-S12 is written with ``seasons: all`` (each season a sample). The out folder must not exist;
it appears only once complete. Then copy it to object storage and point the config's data at it::

    data:
      class_path: terratorch_specmae.datamodules.StreamingCorpusDataModule
      init_args: {input_dir: s3://bucket/ssl4eo_s12_shards, ...}
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import yaml

from terratorch_specmae.cli.command import Command, UsageError, one_line
from terratorch_specmae.datamodules.pretraining_corpora import PretrainingCorpusDataModule
from terratorch_specmae.datamodules.streaming import (
    METADATA_KEY,
    SHARD_DTYPES,
    StreamingCorpusDataModule,
    write_corpus_shards,
)


def corpus_from_config(path: Path, root: str | None = None):
    """The corpus datamodule of a pretraining config's ``data`` section (``root`` replaced when given)."""
    config = yaml.safe_load(Path(path).read_text())
    data = (config or {}).get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or "class_path" not in data:
        raise ValueError(
            f"{path}: expected a 'data' section with a class_path (a pretraining corpus datamodule); got {data!r}."
        )
    module, _, name = data["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{path}: data class_path {data['class_path']!r} cannot be imported ({error}).") from error
    if not (isinstance(cls, type) and issubclass(cls, PretrainingCorpusDataModule)) or issubclass(
        cls, StreamingCorpusDataModule
    ):
        raise TypeError(
            f"{path}: data is {data['class_path']}; expected a corpus datamodule to read from its files "
            "(SSL4EOS12PretrainDataModule, BigEarthNetPretrainDataModule, FMoWSentinelPretrainDataModule, or another "
            "PretrainingCorpusDataModule), not shards."
        )
    init_args = dict(data.get("init_args") or {})
    if root is not None:
        init_args["root"] = root
    if "seasons" in init_args and init_args["seasons"] != "all":
        print(f"seasons: {init_args['seasons']!r} → 'all' (shards store every season as a sample)")
        init_args["seasons"] = "all"
    return cls(**init_args)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="a pretraining config whose data section is a corpus datamodule")
    parser.add_argument("out", type=Path, help="the new shards folder (train/ and val/); must not exist")
    parser.add_argument("--root", help="the corpus's root folder (replaces the config's)")
    parser.add_argument("--dtype", choices=SHARD_DTYPES, default="uint16", help="stored pixel type (default: uint16)")
    parser.add_argument("--num-workers", type=int, default=1, help="processes reading the corpus (default: 1)")
    parser.add_argument("--chunk-bytes", default="64MB", help="LitData chunk size (default: 64MB)")
    parser.add_argument("--compression", choices=["zstd"], default=None, help="compress each chunk (default: none)")


def _run(args: argparse.Namespace) -> None:
    if not args.config.is_file():
        raise FileNotFoundError(f"The config {str(args.config)!r} does not exist (or is not a file).")
    if args.out.exists():  # before the corpus is read
        raise FileExistsError(
            f"{args.out} exists; corpus shards are written to a new folder (remove it or choose another)."
        )
    try:
        datamodule = corpus_from_config(args.config, args.root)
    except TypeError as err:  # a datamodule that is not a corpus: the config is the wrong one
        raise UsageError(str(err)) from err
    except yaml.YAMLError as err:
        raise UsageError(f"{args.config}: not a readable YAML config ({one_line(err)}).") from err
    out = write_corpus_shards(
        datamodule,
        args.out,
        dtype=args.dtype,
        chunk_bytes=args.chunk_bytes,
        compression=args.compression,
        num_workers=args.num_workers,
    )
    samples = json.loads((out / "train" / "index.json").read_text())[METADATA_KEY]["samples"]
    print(
        f"wrote {out}: {datamodule.corpus}, bands {datamodule.band_names}, {samples['train']} training and "
        f"{samples['val']} validation samples"
    )


SHARDS = Command(
    "shards",
    "pretraining corpus → LitData shards for streaming",
    "Write the corpus of a pretraining config's data section (SSL4EO-S12, BigEarthNet-S2, fMoW-Sentinel) as\n"
    "LitData shards (train/ and val/) that StreamingCorpusDataModule streams from local disk or object storage.\n"
    "OUT must not exist; it appears only once complete.\n\n"
    "  specmae shards configs/pretrain/s2mae_vit_base_ssl4eo.yaml ssl4eo_s12_shards --root data/ssl4eo_s12 --num-workers 16",
    _arguments,
    _run,
)

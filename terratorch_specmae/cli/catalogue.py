"""``specmae catalogue`` and ``specmae download``: the pretrained-weights catalogue from the command line.

    specmae catalogue [--json]
    specmae download <variant>[.<tag>]

``catalogue`` lists every entry (:data:`~terratorch_specmae.weights.PRETRAINED_CFGS`): its name, bands,
image size, licence, whether this machine's cache holds it, and where it comes from; nothing is
fetched. ``download`` does what ``backbone_pretrained: true`` does for that name: download, check
against the published checksum, convert once, keep in the cache (``$SPECMAE_CACHE`` or
``$HF_HOME/specmae`` for Zenodo files, the Hub's cache for Hub files), and prints where the file is.
"""

from __future__ import annotations

import argparse
import json

from terratorch_specmae.cli.command import Command, UsageError
from terratorch_specmae.weights import PRETRAINED_CFGS, PretrainedCfg, pretrained_cfg, pretrained_tags, split_tag
from terratorch_specmae.weights.catalogue import DEFAULT_TAGS
from terratorch_specmae.weights.downloads import cached_file, fetch_pretrained

COLUMNS = ("name", "bands", "image size", "licence", "cached", "source")


def _bands(cfg: PretrainedCfg) -> str:
    if not cfg.bands:
        return "?"
    bands = list(cfg.bands)
    return f"{len(bands)} ({bands[0]}…{bands[-1]})" if len(bands) > 2 else f"{len(bands)} ({', '.join(bands)})"


def catalogue_rows() -> list[dict]:
    """One dict per catalogue entry, variants in name order and each variant's default tag first."""
    rows = []
    for variant in sorted(PRETRAINED_CFGS):
        for tag in pretrained_tags(variant):
            cfg = PRETRAINED_CFGS[variant][tag]
            path = cached_file(cfg)
            rows.append({
                "name": f"{variant}.{tag}",
                "default": DEFAULT_TAGS.get(variant) == tag,
                "bands": list(cfg.bands) if cfg.bands else None,
                "image_size": list(cfg.img_size) if cfg.img_size else None,
                "license": cfg.license,
                "source": cfg.location,
                "cached": str(path) if path else None,
            })  # fmt: skip
    return rows


def _table(rows: list[dict]) -> str:
    cells = [COLUMNS] + [
        (
            row["name"] + (" *" if row["default"] else ""),
            _bands(PretrainedCfg(bands=row["bands"])),
            "×".join(map(str, row["image_size"])) if row["image_size"] else "?",
            row["license"] or "?",
            "yes" if row["cached"] else "no",
            row["source"],
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)), line[-1]]) for line in cells]
    return "\n".join(lines) + "\n* the variant's default (what backbone_pretrained: true loads without a tag)"


def _catalogue_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the entries as JSON (with the cached file's path)")


def _catalogue(args: argparse.Namespace) -> None:
    rows = catalogue_rows()
    print(json.dumps(rows, indent=2) if args.json else _table(rows))


def _download_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", help="a catalogue name, <variant>.<tag> (s2mae_vit_base.spectralgpt) or <variant> for its default"
    )


def _download(args: argparse.Namespace) -> None:
    variant, tag = split_tag(args.name)
    if variant not in PRETRAINED_CFGS:
        raise UsageError(f"No catalogue weights are named {args.name!r}; `specmae catalogue` lists the names.")
    try:
        cfg = pretrained_cfg(variant, tag)
    except ValueError as err:
        raise UsageError(f"{err} (`specmae catalogue` lists the names.)") from err
    weights = fetch_pretrained(cfg)
    print(f"{cfg.tag} ({cfg.location}) is in the cache: {weights.path}")


CATALOGUE = Command(
    "catalogue",
    "list the pretrained weights and whether they are cached",
    "List the catalogue of pretrained weights: what backbone_pretrained: true and backbone: <variant>.<tag>\n"
    "load. Nothing is fetched; 'cached' says whether this machine already holds the file.",
    _catalogue_arguments,
    _catalogue,
)
DOWNLOAD = Command(
    "download",
    "fetch, check, convert catalogue weights into the cache",
    "Download catalogue weights as backbone_pretrained: true would (checked against the published checksum,\n"
    "converted once, kept in the cache), and print the file's path. Zenodo files and conversions are kept in\n"
    "$SPECMAE_CACHE (else $HF_HOME/specmae), Hub files in the Hub's cache (HF_HOME / HF_HUB_CACHE). With\n"
    "HF_HUB_OFFLINE=1 nothing is fetched: weights not in the cache are an error.\n\n"
    "  specmae download s2mae_vit_base.spectralgpt_plus",
    _download_arguments,
    _download,
)
COMMANDS = (CATALOGUE, DOWNLOAD)

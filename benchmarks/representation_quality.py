"""Does our MAE pretraining make better encoders than random initialisation? Several seeds, mean ± std.

Protocol (all data from ``examples/data``; nothing else is read at run time):

* **Pretraining data** — the training chips of ``olinda_l7`` (Landsat 7, 6 bands, uint8 DN, rows
  0–255 of the scene) mosaicked back into the training region (``rasterio.merge``) and
  standardised with the means/stds of the pretraining configs. Each step draws ``--batch-size``
  random 64 × 64 crops with a random flip/rot90 (D4) from it.
* **Methods** — ViT-tiny at 64 px, patch 8, the same optimizer steps and batch for all:
  ``s2mae`` (``s2mae_vit_tiny_mae``: cube tokens of t = 3 bands → 2 spectral groups,
  ``cube_random`` masking), ``sigmae`` (``sigmae_vit_tiny_mae``: 2D patch tokens, ``saliency``
  masking on its linear curriculum, options from the SIGMAE config, the datamodule's means/stds
  handed to it as the task does) and ``random2d`` (the same 2D
  model with ``random`` masking). Model options come from ``configs/specmae_pretrain_{s2mae,
  sigmae}.yaml``; the command line sets mask ratio and decoder size (default: the configs').
* **Optimisation** — plain PyTorch: AdamW(betas 0.9, 0.95) over
  ``terratorch_specmae.tasks.optim.param_groups`` (no decay on biases, norms, position tables,
  mask token), lr × ``warmup_cosine_factor`` set every step. ``torch.manual_seed(seed)`` before
  building each model; crops/flips and masks come from their own generators seeded by the seed, so
  every method sees the same crops for a given seed, and evaluations (run under
  ``torch.random.fork_rng``, with their own generators) never move the training random streams.
* **Held-out region** — the validation chips (rows 256–351, no pixel shared with training)
  mosaicked and cut to 96 × 344 px (12 × 43 cells of 8 × 8 px, one token each; the last 5 px
  columns are left out to keep the cell grid whole). Evaluation crops: a fixed grid of 64 × 64
  crops with stride 32 (rows 0, 32; columns 0, 32, …, 256, 280): 20 crops. A cell's features come
  from the crop in which it lies closest to the centre. Cell label: the majority of its pixels'
  labels in ``val/labels`` (0 water, 1 vegetation, 2 built-up) — **rule labels from spectral
  thresholds (NDWI, NDVI Otsu cuts), not ground truth**.
* **Synthetic scenes** (``--data synthetic``): the same protocol on generated scenes of the same
  sizes (256 × 349 for pretraining, 96 × 344 held out), filled with *real* spectra. Layout: one
  smooth random field per class (Gaussian scale 8 px; water in fewer, larger bodies), the class of a
  pixel is the largest field — exact labels, no rules — and its spectrum mixes one real spectrum per
  class with sharp softmax weights (mixed pixels at edges). Which real spectrum a pixel takes follows
  a smooth field over the class's pixels of ``olinda_l7`` sorted by brightness (coherent bright/dark
  patches), plus 1 DN noise. The pretraining scene draws from the training region's pixels, the
  held-out scene from the validation region's (the rule labels decide which class pool a real pixel
  belongs to). Change pairs: the held-out scene's 20 evaluation crops as date 1, date 2 built as the
  real pairs are (radiometric change everywhere; built-up blobs over water/vegetation in two crops
  of three). Everything is drawn from one seed (0), so the scenes are the same for every method and
  seed.
* **Spatial split** of the held-out cells: 64 px column blocks alternate probe-train (even blocks)
  / probe-test (odd blocks). (Water is only in the east, so a left/right split would leave one side
  without it.)

Measurements, per method and seed, at step 0 (the same architecture randomly initialised with the
same seed: the "random init" rows) and after pretraining:

(a) **Masked reconstruction** on the 20 held-out crops with *random* masking for every method
    (sigmae too, so all are compared on the same kind of mask) at ratios 0.75 and 0.9, masks from
    a generator seeded by the seed: the model's masked MSE (``out.loss["loss"]``, ``model.eval()``,
    every masked token decoded) and the **mean-of-visible baseline** — per image and band, the
    mean of the visible pixels of the normalised target, predicted for every masked pixel of that
    band — on the same masked pixels (``out.mask``) in the same target space: the model's
    ``target_norm`` (minmax in the configs) with per-image statistics from ``target_statistics``
    over all pixels (``target_stats: all``, the configs' default) or the visible ones
    (``--target-stats visible``). A band with no visible pixel in an image (possible with cube
    tokens) is predicted by the mean of all visible target values of that image. The model's own
    ``"baseline_loss"`` is recorded next to ours, and the run stops if the two differ (then the
    errors would not be on the same pixels in the same space). Reported: model MSE, baseline MSE,
    baseline / model (targets: ≥ 2× at 0.75, ≥ 1.5× at 0.9).
(b) **Frozen land-cover probes** on per-cell features: the last block's normed output, spectral
    groups concatenated per cell (``fold_spectral_groups(..., "concat")``). Features standardised
    with the mean/std of all probe-train cells (no labels involved). Linear probe: class-balanced
    multinomial logistic regression in torch (float64, LBFGS, ``LINEAR_STEPS`` iterations, L2
    ``LINEAR_L2``: fixed, not tuned per model); k-NN: cosine, k = 10 (fewer if fewer labels),
    votes weighted by exp(similarity / 0.07). Labels: ≈ 1 %, 10 % of the probe-train cells (drawn
    with the seed, at least one per class present; the same cells for every method of a seed) and
    all. Metrics on probe-test cells: macro F1 (main), balanced accuracy, accuracy. Also probed:
    raw spectra (the cell's mean normalised spectrum, 6 values; mean + std, 12 values).
(c) **Change probe** on the held-out pairs of ``olinda_l7_cd/val`` (20 chips of 64 × 64, 12 bands =
    date 1 + date 2; **date 2 is constructed**: a radiometric change everywhere plus blobs where
    vegetation/water take built-up spectra). Per cell: changed when ≥ half its pixels changed;
    features ``|f(date 1) − f(date 2)|``; raw: ``|mean spectrum 1 − mean spectrum 2|``; cells split
    by the same column blocks (of the cell centre). Linear and k-NN, 1 %, 10 %, all labels; F1 of
    the change class.
(d) **Short fine-tune** with few labelled chips: ``--finetune-chips`` 64 × 64 crops drawn with the
    seed from the 6 grid crops that lie wholly in probe-train blocks; encoder + linear head on the
    per-cell features (zero-initialised), class-balanced cross-entropy on the crops' cell labels,
    random D4 per step, ``--finetune-steps`` AdamW steps (same recipe for pretrained and scratch),
    then macro F1 / accuracy on probe-test cells.
(e) **Learning curve** — at each ``--curve-points`` fraction of the budget: the reconstruction
    ratios and the 10 % linear probe.

Everything is reported as mean ± std (sample std) over the seeds; a Markdown table for
``benchmarks/RESULTS.md`` is printed and every raw number goes to ``--out`` (JSON, written
atomically). Pretraining samples/s (training steps only) and the total wall time are recorded.

    python benchmarks/representation_quality.py                  # full run (3 seeds, ~25-30 min on 2 busy cores)
    python benchmarks/representation_quality.py --quick          # plumbing smoke test (< 2 min)
    python benchmarks/representation_quality.py --methods s2mae --seeds 0 --steps 100 --lr 1e-3
    python benchmarks/representation_quality.py --data synthetic   # the generated scenes
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.merge
import torch
import torch.nn.functional as F
import yaml
from terratorch.registry import FULL_MODEL_REGISTRY
from torch import nn

import terratorch_specmae.backbones  # noqa: F401  (registers the s2mae_* / sigmae_* models)
from terratorch_specmae.datamodules.synthetic_hsi import smooth_field
from terratorch_specmae.masking import RandomMasking
from terratorch_specmae.models.encoder import fold_spectral_groups
from terratorch_specmae.models.mae import target_statistics
from terratorch_specmae.tasks.optim import param_groups, scaled_lr, warmup_cosine_factor

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples/data"
CONFIGS = {"cube": ROOT / "configs/specmae_pretrain_s2mae.yaml", "2d": ROOT / "configs/specmae_pretrain_sigmae.yaml"}
METHODS = {  # name → (config, masking override: None keeps the config's)
    "s2mae": ("cube", None),
    "sigmae": ("2d", None),
    "random2d": ("2d", "random"),
}
CROP, CELL = 64, 8
REGION_WIDTH = 344  # held-out region: 96 × 344 px = 12 × 43 cells (the scene is 349 px wide)
BLOCK = 64  # probe-train / probe-test column blocks (px)
CLASSES = ("water", "vegetation", "built_up")
EVAL_RATIOS = (0.75, 0.9)
FRACTIONS = {"1%": 0.01, "10%": 0.1, "all": 1.0}
LINEAR_STEPS, LINEAR_L2 = 300, 1e-3
KNN_K, KNN_TEMPERATURE = 10, 0.07
LAYOUT_SCALE = 8.0  # px: Gaussian scale of the synthetic class fields (patches of a few tokens)
NOTES = {
    "real": "land-cover labels are rule labels from spectral thresholds (NDWI, NDVI Otsu cuts), not ground truth",
    "synthetic": "synthetic scenes: generated layouts (exact labels) filled with real Landsat spectra of rule-labelled pixels",
}
EVAL_SEED_OFFSET, MASK_SEED_OFFSET, LABEL_SEED_OFFSET, FINETUNE_SEED_OFFSET = 1000, 2000, 3000, 4000


# ---------------------------------------------------------------------------------------------
# data


@dataclass
class HeldOut:
    """The held-out land-cover region and change pairs, ready for the probes."""

    crops: torch.Tensor  # [20, 6, 64, 64] evaluation crops (standardised)
    cell_source: torch.Tensor  # [cells] index into the crops' flattened [20·64] cells
    cell_labels: torch.Tensor  # [cells] majority rule label
    cell_train: torch.Tensor  # [cells] bool: probe-train (else probe-test)
    raw_spectra: torch.Tensor  # [cells, 12] per-cell mean and std of the standardised bands
    finetune_pool: list[tuple[torch.Tensor, torch.Tensor]]  # (crop [6, 64, 64], cell labels [8, 8]) in probe-train
    change_t1: torch.Tensor  # [20, 6, 64, 64]
    change_t2: torch.Tensor
    change_labels: torch.Tensor  # [20·64] per cell: 1 changed
    change_train: torch.Tensor  # [20·64] bool
    change_raw: torch.Tensor  # [20·64, 6] |mean spectrum t1 − mean spectrum t2|


def read_mosaic(folder: Path) -> tuple[np.ndarray, rasterio.Affine]:
    """Mosaic the georeferenced chips of a folder back into one ``[C, H, W]`` array."""
    files = sorted(folder.glob("*.tif"))
    if not files:
        raise SystemExit(f"No .tif chips found in {folder}")
    sources = [rasterio.open(f) for f in files]
    try:
        mosaic, transform = rasterio.merge.merge(sources)
    finally:
        for src in sources:
            src.close()
    return mosaic, transform


def standardise(raw: np.ndarray, means: list[float], stds: list[float]) -> torch.Tensor:
    """uint8 DN ``[..., C, H, W]`` → standardised float32, as the datamodule hands batches to the model."""
    x = torch.from_numpy(raw.astype(np.float32))
    return (x - torch.tensor(means)[:, None, None]) / torch.tensor(stds)[:, None, None]


def cell_view(x: torch.Tensor) -> torch.Tensor:
    """``[..., H, W]`` → ``[..., h·w, 8·8]``: the pixels of each 8 × 8 cell, cells row-major."""
    *lead, h, w = x.shape
    x = x.reshape(*lead, h // CELL, CELL, w // CELL, CELL).movedim(-3, -2)
    return x.reshape(*lead, (h // CELL) * (w // CELL), CELL * CELL)


def majority(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Majority label of each cell of ``[..., H, W]`` labels (ties to the lower class) → ``[..., h·w]``."""
    return F.one_hot(cell_view(labels.long()), n_classes).sum(-2).argmax(-1)


def in_train_block(col_px: torch.Tensor) -> torch.Tensor:
    """Whether a column (px in the region) lies in a probe-train block (even 64 px blocks)."""
    return (col_px // BLOCK) % 2 == 0


def crop_grid(height: int, width: int) -> list[tuple[int, int]]:
    """Top-left corners of the fixed 64 px evaluation crops: stride 32, plus one aligned to the right edge."""
    rows = list(range(0, height - CROP + 1, CROP // 2))
    cols = list(range(0, width - CROP + 1, CROP // 2))
    if cols[-1] != width - CROP:
        cols.append(width - CROP)
    return [(r, c) for r in rows for c in cols]


def central_cell_sources(corners: list[tuple[int, int]], height: int, width: int) -> torch.Tensor:
    """For each region cell, the index (into the crops' flattened cells) of the crop in which the cell
    lies closest to the crop's centre (Chebyshev distance; ties to the first crop)."""
    n_local = CROP // CELL
    local_r, local_c = torch.meshgrid(torch.arange(n_local), torch.arange(n_local), indexing="ij")
    local_r, local_c = local_r.flatten(), local_c.flatten()
    centre = (n_local - 1) / 2
    distance = torch.maximum((local_r - centre).abs(), (local_c - centre).abs())
    cols = width // CELL
    best = torch.full(((height // CELL) * cols,), math.inf)
    source = torch.full_like(best, -1, dtype=torch.long)
    for i, (r, c) in enumerate(corners):
        cell = (r // CELL + local_r) * cols + c // CELL + local_c
        better = distance < best[cell]
        best[cell[better]] = distance[better]
        source[cell[better]] = i * n_local * n_local + torch.arange(n_local * n_local)[better]
    if (source < 0).any():
        raise RuntimeError("The evaluation crops do not cover every cell of the region.")
    return source


def load_heldout(means: list[float], stds: list[float]) -> tuple[HeldOut, dict]:
    """Real held-out data: the land-cover region (val chips mosaicked) and the change pairs of ``olinda_l7_cd/val``."""
    raw, transform = read_mosaic(DATA / "olinda_l7/val/images")
    labels_raw, _ = read_mosaic(DATA / "olinda_l7/val/labels")
    pairs = []
    for f in sorted((DATA / "olinda_l7_cd/val/images").glob("*.tif")):
        with rasterio.open(f) as src:
            pair = src.read()
            col = round((src.transform.c - transform.c) / transform.a)
        with rasterio.open(DATA / "olinda_l7_cd/val/labels" / f"{f.stem}_label.tif") as src:
            pairs.append((pair.astype(np.float32), src.read(1).astype(np.float32), col))
    return heldout_from(raw[:, :, :REGION_WIDTH].astype(np.float32), labels_raw[0, :, :REGION_WIDTH], pairs, means, stds)


def heldout_from(raw: np.ndarray, labels_raw: np.ndarray, pairs: list, means: list[float], stds: list[float]) -> tuple[HeldOut, dict]:
    """The probes' held-out data from a region ``raw`` ``[6, H, W]`` (DN) with per-pixel class labels
    ``[H, W]``, and change ``pairs``: (``[12, 64, 64]`` DN of date 1 + date 2, ``[64, 64]`` 1 = changed,
    column of the chip's left edge in the region)."""
    height, width = raw.shape[1:]
    image = standardise(raw, means, stds)
    labels = torch.from_numpy(labels_raw.astype(np.int64))
    corners = crop_grid(height, width)
    crops = torch.stack([image[:, r : r + CROP, c : c + CROP] for r, c in corners])
    cell_labels = majority(labels, len(CLASSES))
    cell_cols = torch.arange(width // CELL).repeat(height // CELL) * CELL
    cell_train = in_train_block(cell_cols + CELL // 2)
    cells = cell_view(image)  # [6, cells, 64]
    raw_spectra = torch.cat([cells.mean(-1), cells.std(-1)]).T
    finetune_pool = [
        (crops[i], majority(labels[r : r + CROP, c : c + CROP], len(CLASSES)).reshape(CROP // CELL, CROP // CELL))
        for i, (r, c) in enumerate(corners)
        if c // BLOCK == (c + CROP - 1) // BLOCK and bool(in_train_block(torch.tensor(c)))
    ]

    t1, t2, change, change_cols = [], [], [], []
    for pair, changed, col in pairs:
        t1.append(standardise(pair[:6], means, stds))
        t2.append(standardise(pair[6:], means, stds))
        change.append((cell_view(torch.from_numpy(changed)).mean(-1) >= 0.5).long())
        change_cols.append(col + torch.arange(CROP // CELL).repeat(CROP // CELL) * CELL + CELL // 2)
    change_t1, change_t2 = torch.stack(t1), torch.stack(t2)
    change_raw = (cell_view(change_t1).mean(-1) - cell_view(change_t2).mean(-1)).abs()  # [pairs, 6, 64]
    heldout = HeldOut(
        crops=crops,
        cell_source=central_cell_sources(corners, height, width),
        cell_labels=cell_labels,
        cell_train=cell_train,
        raw_spectra=raw_spectra,
        finetune_pool=finetune_pool,
        change_t1=change_t1,
        change_t2=change_t2,
        change_labels=torch.cat(change),
        change_train=in_train_block(torch.cat(change_cols)),
        change_raw=change_raw.permute(0, 2, 1).reshape(-1, 6),
    )
    counts = {
        "region_px": [height, width],
        "eval_crops": len(corners),
        "cells": {
            split: {CLASSES[k]: int(((cell_labels == k) & mask).sum()) for k in range(len(CLASSES))}
            for split, mask in (("probe_train", cell_train), ("probe_test", ~cell_train))
        },
        "finetune_pool_crops": len(finetune_pool),
        "change_chips": len(pairs),
        "change_cells": {
            split: {"changed": int((heldout.change_labels[m] == 1).sum()), "unchanged": int((heldout.change_labels[m] == 0).sum())}
            for split, m in (("probe_train", heldout.change_train), ("probe_test", ~heldout.change_train))
        },
    }
    return heldout, counts


# synthetic scenes: a made layout filled with real, rule-labelled Landsat spectra


def spectra_pools(split: str) -> list[np.ndarray]:
    """Per class, the real pixel spectra ``[N, 6]`` (DN) of a split of ``olinda_l7``, sorted by brightness."""
    raw, _ = read_mosaic(DATA / f"olinda_l7/{split}/images")
    labels, _ = read_mosaic(DATA / f"olinda_l7/{split}/labels")
    pixels, labels = raw.reshape(raw.shape[0], -1).T.astype(np.float32), labels.reshape(-1)
    pools = []
    for k in range(len(CLASSES)):
        pool = pixels[labels == k]
        pools.append(pool[np.argsort(pool.sum(axis=1), kind="stable")])
    return pools


def synthetic_layout(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Class abundances of a scene: smooth random fields (water in fewer, larger bodies) → hard class map
    ``[H, W]`` (the largest abundance) and sharp softmax mixing weights ``[K, H, W]`` (mixed pixels at edges)."""
    abundance = smooth_field(rng, (len(CLASSES), *shape), scale=LAYOUT_SCALE)
    abundance[0] += 0.5 * smooth_field(rng, shape, scale=2 * LAYOUT_SCALE) - 0.4
    weights = np.exp(10.0 * abundance)
    return abundance.argmax(axis=0), weights / weights.sum(axis=0, keepdims=True)


def fill_spectra(rng: np.random.Generator, pools: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Mix, per pixel, one real spectrum of each class by ``weights`` ``[K, H, W]`` → ``[6, H, W]`` DN.
    Which spectrum of a class a pixel takes follows a smooth field over the class's pool sorted by
    brightness, so texture is spatially coherent (bright and dark patches) and every spectrum is real;
    1 DN of sensor noise is added."""
    shape = weights.shape[1:]
    scene = np.zeros((pools[0].shape[1], *shape), np.float32)
    for k, pool in enumerate(pools):
        rank = 0.5 * (1.0 + np.tanh(0.8 * smooth_field(rng, shape, scale=4.0)))  # ≈ uniform on (0, 1)
        jitter = rng.integers(-len(pool) // 50, len(pool) // 50 + 1, size=shape)
        index = np.clip((rank * (len(pool) - 1)).astype(np.int64) + jitter, 0, len(pool) - 1)
        scene += weights[k][None] * pool[index].transpose(2, 0, 1)
    return np.clip(scene + rng.normal(0.0, 1.0, scene.shape), 0, 255).astype(np.float32)


def synthetic_data(means: list[float], stds: list[float], seed: int = 0) -> tuple[torch.Tensor, HeldOut, dict]:
    """A pretraining scene from the training spectra and a held-out scene from the validation spectra.

    Both scenes are the size of the real regions (256 × 349 and 96 × 344 px); their class maps are the
    generator's (exact labels, not rules). Change pairs: the held-out scene's 20 evaluation crops as date
    1; date 2 = the same crop with a radiometric change everywhere (per-band gain 0.95–1.05, offset ±2 DN,
    1 DN noise) and, in two of three crops, smooth blobs where water/vegetation pixels take built-up
    spectra of the same split (as ``examples/make_change_pairs.py`` builds the real pairs)."""
    rng = np.random.default_rng(seed)
    _, weights = synthetic_layout(rng, (256, 349))
    scene = standardise(fill_spectra(rng, spectra_pools("train"), weights), means, stds)

    pools = spectra_pools("val")
    classes, weights = synthetic_layout(rng, (96, REGION_WIDTH))
    region = fill_spectra(rng, pools, weights)
    only_built = np.zeros_like(weights)
    only_built[CLASSES.index("built_up")] = 1.0
    built = fill_spectra(rng, pools, only_built)  # the region again, built-up spectra everywhere
    pairs = []
    for i, (r, c) in enumerate(crop_grid(96, REGION_WIDTH)):
        t1 = region[:, r : r + CROP, c : c + CROP]
        t2 = t1.copy()
        changed = np.zeros((CROP, CROP), np.float32)
        if i % 3 != 2:
            blobs = smooth_field(rng, (CROP, CROP), scale=6.0) > 1.2
            changed = (blobs & (classes[r : r + CROP, c : c + CROP] != CLASSES.index("built_up"))).astype(np.float32)
            t2 = np.where(changed[None] > 0, built[:, r : r + CROP, c : c + CROP], t2)
        gain = rng.uniform(0.95, 1.05, (6, 1, 1))
        offset = rng.uniform(-2.0, 2.0, (6, 1, 1))
        t2 = np.clip(t2 * gain + offset + rng.normal(0.0, 1.0, t2.shape), 0, 255).astype(np.float32)
        pairs.append((np.concatenate([t1, t2]), changed, c))
    heldout, counts = heldout_from(region, classes, pairs, means, stds)
    counts["synthetic_seed"] = seed
    return scene, heldout, counts


def random_crops(scene: torch.Tensor, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """``batch_size`` random 64 × 64 crops of ``scene`` ``[C, H, W]``, each with a random D4 transform."""
    _, h, w = scene.shape
    rows = torch.randint(0, h - CROP + 1, (batch_size,), generator=generator).tolist()
    cols = torch.randint(0, w - CROP + 1, (batch_size,), generator=generator).tolist()
    turns = torch.randint(0, 4, (batch_size,), generator=generator).tolist()
    flips = torch.randint(0, 2, (batch_size,), generator=generator).tolist()
    return torch.stack([d4(scene[:, r : r + CROP, c : c + CROP], k, f) for r, c, k, f in zip(rows, cols, turns, flips)])


def d4(x: torch.Tensor, turns: int, flip: int) -> torch.Tensor:
    """Rotate the last two dims by ``turns`` × 90° and flip them horizontally when ``flip``."""
    x = torch.rot90(x, turns, dims=(-2, -1))
    return x.flip(-1) if flip else x


# ---------------------------------------------------------------------------------------------
# models and pretraining


def model_args(method: str, args: argparse.Namespace) -> dict:
    """Build options of a method's MAE: its pretraining config, with the command line's overrides."""
    config_name, masking = METHODS[method]
    config = yaml.safe_load(CONFIGS[config_name].read_text())
    options = dict(config["model"]["init_args"]["model_args"])
    options["mask_ratio"] = args.mask_ratio
    if masking is not None:
        options["masking"] = masking
        options.pop("masking_options", None)
    for key, value in (("decoder_embed_dim", args.decoder_width), ("decoder_depth", args.decoder_depth),
                       ("decoder_num_heads", args.decoder_heads), ("target_stats", args.target_stats),
                       ("target_norm", args.target_norm)):
        if value is not None:
            options[key] = value
    return options


def data_statistics() -> tuple[list[float], list[float]]:
    """Per-band means and stds of the pretraining configs' datamodule (the training chips')."""
    data = yaml.safe_load(CONFIGS["cube"].read_text())["data"]["init_args"]
    return data["means"]["landsat7"], data["stds"]["landsat7"]


def build_model(method: str, args: argparse.Namespace, seed: int) -> nn.Module:
    """The method's MAE, initialised from ``seed``; saliency masking gets the datamodule's means/stds
    (as ``SpectralMAETask`` hands them over) to undo the standardisation before computing indices."""
    options = model_args(method, args)
    torch.manual_seed(seed)
    model = FULL_MODEL_REGISTRY.build(options.pop("model"), **options)
    if getattr(model.masking, "needs_raw_values", False) and model.masking.means is None:
        model.set_masking_normalization(*data_statistics(), source="the pretraining config's means/stds")
    return model


def fingerprint(model: nn.Module) -> str:
    """Hash of all weights: models built alike with the same seed share their step-0 evaluation."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def pretrain(method, seed, args, scene, heldout, step0_cache) -> dict:
    """Pretrain one method with one seed; evaluate at the curve points (fully at 0 and at the end)."""
    model = build_model(method, args, seed)
    optimizer = torch.optim.AdamW(param_groups(model.named_parameters(), args.weight_decay), lr=args.lr,
                                  betas=(0.9, 0.95))  # fmt: skip
    data_generator = torch.Generator().manual_seed(seed)
    mask_generator = torch.Generator().manual_seed(MASK_SEED_OFFSET + seed)
    warmup = round(args.warmup_fraction * args.steps)
    points = sorted({round(f * args.steps) for f in args.curve_points} | {0, args.steps})
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")
    evaluations, losses, train_seconds, eval_seconds = {}, [], 0.0, 0.0
    for step in range(args.steps + 1):
        if step in points:
            t = time.perf_counter()
            evaluations[str(step)] = evaluate_at(model, step, method, seed, args, heldout, step0_cache)
            eval_seconds += time.perf_counter() - t
        if step == args.steps:
            break
        t = time.perf_counter()
        model.train()
        factor = warmup_cosine_factor(step, args.steps, warmup, args.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * factor
        x = random_crops(scene, args.batch_size, data_generator)
        progress = step / args.steps if model.uses_progress else None
        with autocast:
            loss = model(x, generator=mask_generator, progress=progress).loss["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        train_seconds += time.perf_counter() - t
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            raise RuntimeError(f"{method} seed {seed}: loss {losses[-1]} at step {step}")
    samples_per_s = args.steps * args.batch_size / train_seconds
    print(f"  {method} seed {seed}: {args.steps} steps in {train_seconds:.0f} s ({samples_per_s:.1f} samples/s), "
          f"evaluations {eval_seconds:.0f} s, loss {losses[0]:.4f} → {statistics.fmean(losses[-10:]):.4f} "
          "(mean of the last 10 steps)", flush=True)  # fmt: skip
    return {"train_seconds": train_seconds, "eval_seconds": eval_seconds, "samples_per_s": samples_per_s,
            "losses": losses, "evaluations": evaluations}  # fmt: skip


def evaluate_at(model, step, method, seed, args, heldout, step0_cache) -> dict:
    """Evaluate at a curve point, fully at 0 and at the end. Evaluations run on their own random
    streams; step 0 is shared by models whose initial weights are identical (sigmae / random2d)."""
    t = time.perf_counter()
    key = (seed, fingerprint(model)) if step == 0 else None
    cached = key in step0_cache
    if cached:
        result = step0_cache[key]
    else:
        with torch.random.fork_rng(devices=[]):
            result = evaluate(model, heldout, seed, args, full=step in (0, args.steps))
        if key is not None:
            step0_cache[key] = result
    print(f"  {method} seed {seed} step {step:>4}: reconstruction baseline/model "
          + ", ".join(f"{r}: {result['reconstruction'][str(r)]['ratio']:.2f}x" for r in EVAL_RATIOS)
          + f", linear probe 10% macro F1 {result['landcover']['linear']['10%']['macro_f1']:.3f}"
          + (" [cached]" if cached else f" [{time.perf_counter() - t:.0f} s]"), flush=True)  # fmt: skip
    return result


# ---------------------------------------------------------------------------------------------
# evaluation


def evaluate(model: nn.Module, heldout: HeldOut, seed: int, args: argparse.Namespace, full: bool) -> dict:
    """Reconstruction ratios and the 10 % linear land-cover probe; with ``full`` every probe and the fine-tune."""
    model.eval()
    result = {"reconstruction": {str(r): reconstruction(model, heldout.crops, r, seed) for r in EVAL_RATIOS}}
    features = region_features(model.encoder, heldout)
    fractions = FRACTIONS if full else {"10%": FRACTIONS["10%"]}
    kinds = ("linear", "knn") if full else ("linear",)
    result["landcover"] = probe_suite(features, heldout.cell_labels, heldout.cell_train, len(CLASSES), seed,
                                      fractions, kinds)  # fmt: skip
    if full:
        result["change"] = probe_suite(change_features(model.encoder, heldout), heldout.change_labels,
                                       heldout.change_train, 2, seed, FRACTIONS, kinds)  # fmt: skip
        result["finetune"] = finetune(model.encoder, heldout, seed, args)
    return result


@torch.no_grad()
def reconstruction(model: nn.Module, crops: torch.Tensor, ratio: float, seed: int) -> dict:
    """Masked MSE of the model and of the mean-of-visible baseline on the same pixels, in target space.

    Every model is evaluated under random masking at ``ratio`` (the masks depend only on the seed
    and the token grid). The model's error is ``out.loss["loss"]`` (every masked token is decoded:
    ``decode_fraction`` 1); the baseline is computed here from ``out.mask`` and the target
    normalisation. Where the model also reports ``"baseline_loss"``, the two baselines must agree,
    which shows that both errors are on the same pixels in the same space."""
    if model.decode_fraction != 1.0:
        raise ValueError(f"decode_fraction {model.decode_fraction}: the evaluation loss would cover a subset of the masked tokens.")
    trained_masking = model.masking
    model.masking = RandomMasking(mask_ratio=ratio)
    try:
        out = model(crops, generator=torch.Generator().manual_seed(EVAL_SEED_OFFSET + seed))
    finally:
        model.masking = trained_masking
    masked = out.mask.float()
    visible = 1.0 - masked
    n_visible = visible.sum(dim=(-2, -1), keepdim=True)
    shift, scale = target_statistics(crops, None, model.target_norm)
    if model.target_stats == "visible":  # statistics of the visible pixels (all pixels for a band hidden everywhere)
        seen_shift, seen_scale = target_statistics(crops, visible.bool(), model.target_norm)
        shift, scale = torch.where(n_visible > 0, seen_shift, shift), torch.where(n_visible > 0, seen_scale, scale)
    target = (crops - shift) / scale
    hidden_bands = int((n_visible == 0).sum())  # cube tokens can hide a band group of an image entirely
    image_mean = (target * visible).sum(dim=(1, 2, 3), keepdim=True) / visible.sum(dim=(1, 2, 3), keepdim=True)
    band_mean = torch.where(n_visible > 0, (target * visible).sum(dim=(-2, -1), keepdim=True) / n_visible.clamp(min=1),
                            image_mean)  # fmt: skip
    n_masked = masked.sum()
    baseline = float(((target - band_mean) ** 2 * masked).sum() / n_masked)
    model_mse = float(out.loss["loss"])
    result = {"model_mse": model_mse, "baseline_mse": baseline, "ratio": baseline / model_mse,
              "masked_fraction": float(n_masked / masked.numel()), "fully_hidden_bands": hidden_bands}  # fmt: skip
    if "baseline_loss" in out.loss:
        reported = float(out.loss["baseline_loss"])
        result["model_reported_baseline_mse"] = reported
        if hidden_bands == 0 and not math.isclose(reported, baseline, rel_tol=1e-4, abs_tol=1e-7):
            raise RuntimeError(f"The model's baseline_loss {reported} differs from ours {baseline}: "
                               "its loss is not on the pixels of out.mask in the same target space.")  # fmt: skip
    return result


@torch.no_grad()
def cell_features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Last block's normed output per 8 × 8 cell, spectral groups concatenated: ``[N, 64, G·D]``."""
    encoder.eval()
    out = []
    for batch in images.split(batch_size):
        tokens, grid = encoder.embed(batch)
        hidden = encoder.forward_blocks(tokens, [encoder.depth - 1])[0]
        out.append(fold_spectral_groups(hidden, grid.groups, "concat"))
    return torch.cat(out)


def region_features(encoder: nn.Module, heldout: HeldOut) -> torch.Tensor:
    """Per-cell features of the held-out region ``[cells, F]``, each from its most central crop."""
    features = cell_features(encoder, heldout.crops)
    return features.reshape(-1, features.shape[-1])[heldout.cell_source]


def change_features(encoder: nn.Module, heldout: HeldOut) -> torch.Tensor:
    """``|f(date 1) − f(date 2)|`` per cell of the change chips ``[chips·64, F]``."""
    diff = (cell_features(encoder, heldout.change_t1) - cell_features(encoder, heldout.change_t2)).abs()
    return diff.reshape(-1, diff.shape[-1])


def label_subsets(labels: torch.Tensor, train: torch.Tensor, seed: int, fractions: dict) -> dict[str, torch.Tensor]:
    """Labelled probe-train cells per fraction: ``max(#classes, round(f·N))`` drawn with the seed, one per
    class present first. Depends only on the labels and the seed (the same cells for every model)."""
    pool = torch.nonzero(train).flatten()
    subsets = {}
    for i, (name, fraction) in enumerate(FRACTIONS.items()):
        if name not in fractions:
            continue
        if fraction >= 1.0:
            subsets[name] = pool
            continue
        generator = torch.Generator().manual_seed(LABEL_SEED_OFFSET + 10 * seed + i)
        order = pool[torch.randperm(len(pool), generator=generator)]
        first = [order[labels[order] == k][0] for k in labels[pool].unique()]
        n = max(len(first), round(fraction * len(pool)))
        rest = order[~torch.isin(order, torch.stack(first))]
        subsets[name] = torch.cat([torch.stack(first), rest[: n - len(first)]])
    return subsets


def scores(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> dict:
    """Macro F1 (over classes present in truth or prediction), balanced accuracy, accuracy, per-class F1."""
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.float64)
    confusion.index_put_((y_true, y_pred), torch.ones(len(y_true), dtype=torch.float64), accumulate=True)
    tp = confusion.diag()
    support, predicted = confusion.sum(1), confusion.sum(0)
    f1 = torch.where(support + predicted > 0, 2 * tp / (support + predicted).clamp(min=1), 0.0)
    present = (support + predicted) > 0
    recall = tp[support > 0] / support[support > 0]
    return {"macro_f1": float(f1[present].mean()), "balanced_accuracy": float(recall.mean()),
            "accuracy": float(tp.sum() / confusion.sum()), "f1_per_class": f1.tolist()}  # fmt: skip


def balanced_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    counts = torch.bincount(y, minlength=n_classes).double()
    return torch.where(counts > 0, len(y) / (n_classes * counts.clamp(min=1)), 0.0)


def linear_probe(x_train, y_train, x_test, n_classes) -> torch.Tensor:
    """Class-balanced multinomial logistic regression (L2 ``LINEAR_L2``, LBFGS) → predicted classes."""
    weight = torch.zeros(x_train.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    class_weights = balanced_weights(y_train, n_classes)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=LINEAR_STEPS, history_size=20,
                                  line_search_fn="strong_wolfe")  # fmt: skip

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x_train @ weight + bias, y_train, weight=class_weights)
        loss = loss + LINEAR_L2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return (x_test @ weight + bias).argmax(1)


def knn_probe(x_train, y_train, x_test, n_classes) -> torch.Tensor:
    """Cosine k-NN (k = ``KNN_K`` or fewer), votes weighted by exp(similarity / ``KNN_TEMPERATURE``)."""
    similarity = F.normalize(x_test, dim=1) @ F.normalize(x_train, dim=1).T
    top, index = similarity.topk(min(KNN_K, len(y_train)), dim=1)
    votes = torch.zeros(len(x_test), n_classes, dtype=torch.float64)
    votes.scatter_add_(1, y_train[index], (top / KNN_TEMPERATURE).exp())
    return votes.argmax(1)


def probe_suite(features, labels, train, n_classes, seed, fractions, kinds) -> dict:
    """Linear and/or k-NN probes at each label fraction, scored on the probe-test cells."""
    x = features.double()
    mean, std = x[train].mean(0), x[train].std(0).clamp(min=1e-6)  # all probe-train cells, labels unused
    x = (x - mean) / std
    test = torch.nonzero(~train).flatten()
    subsets = label_subsets(labels, train, seed, fractions)
    probes = {"linear": linear_probe, "knn": knn_probe}
    result = {}
    for kind in kinds:
        result[kind] = {}
        for name, chosen in subsets.items():
            pred = probes[kind](x[chosen], labels[chosen], x[test], n_classes)
            result[kind][name] = {**scores(labels[test], pred, n_classes), "labelled": len(chosen)}
    return result


def finetune(encoder: nn.Module, heldout: HeldOut, seed: int, args: argparse.Namespace) -> dict:
    """Fine-tune a copy of the encoder + a linear per-cell head on a few labelled chips; score probe-test cells."""
    generator = torch.Generator().manual_seed(FINETUNE_SEED_OFFSET + seed)
    chosen = torch.randperm(len(heldout.finetune_pool), generator=generator)[: args.finetune_chips].tolist()
    images = torch.stack([heldout.finetune_pool[i][0] for i in chosen])
    labels = torch.stack([heldout.finetune_pool[i][1] for i in chosen])
    encoder = copy.deepcopy(encoder).train()
    head = nn.Linear(encoder.out_channels[-1], len(CLASSES))
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    named = [*(("encoder." + n, p) for n, p in encoder.named_parameters()), *(("head." + n, p) for n, p in head.named_parameters())]
    optimizer = torch.optim.AdamW(param_groups(named, args.weight_decay), lr=args.finetune_lr)
    class_weights = balanced_weights(labels.flatten(), len(CLASSES)).float()
    warmup = round(0.1 * args.finetune_steps)
    for step in range(args.finetune_steps):
        for group in optimizer.param_groups:
            group["lr"] = args.finetune_lr * warmup_cosine_factor(step, args.finetune_steps, warmup)
        turns = torch.randint(0, 4, (len(chosen),), generator=generator).tolist()
        flips = torch.randint(0, 2, (len(chosen),), generator=generator).tolist()
        x = torch.stack([d4(img, k, f) for img, k, f in zip(images, turns, flips)])
        y = torch.stack([d4(lab, k, f) for lab, k, f in zip(labels, turns, flips)]).flatten(1)
        tokens, grid = encoder.embed(x)
        hidden = fold_spectral_groups(encoder.forward_blocks(tokens, [encoder.depth - 1])[0], grid.groups, "concat")
        loss = F.cross_entropy(head(hidden).flatten(0, 1), y.flatten(), weight=class_weights)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        pred = head(region_features(encoder, heldout)).argmax(1)
    test = ~heldout.cell_train
    return {**scores(heldout.cell_labels[test], pred[test], len(CLASSES)), "chips": chosen,
            "labelled_cells": int(labels.numel()), "final_loss": loss.item()}  # fmt: skip


def raw_spectra_probes(heldout: HeldOut, seed: int) -> dict:
    """The same probes on raw spectra: cell mean (6), mean + std (12); change: |mean difference| (6)."""
    kinds = ("linear", "knn")
    labels, train, n = heldout.cell_labels, heldout.cell_train, len(CLASSES)
    landcover = {
        "mean": probe_suite(heldout.raw_spectra[:, :6], labels, train, n, seed, FRACTIONS, kinds),
        "mean+std": probe_suite(heldout.raw_spectra, labels, train, n, seed, FRACTIONS, kinds),
    }
    change = probe_suite(heldout.change_raw, heldout.change_labels, heldout.change_train, 2, seed, FRACTIONS, kinds)
    return {"landcover": landcover, "change": change}


# ---------------------------------------------------------------------------------------------
# reporting


def metric_of(result: dict, metric: str) -> float:
    """A probe's metric; ``f1_change`` is the F1 of class 1 (changed)."""
    return result["f1_per_class"][1] if metric == "f1_change" else result[metric]


def mean_std(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def markdown_report(results: dict, args: argparse.Namespace) -> str:
    """All tables, mean ± std over seeds."""
    runs, raw, seeds = results["runs"], results["raw_spectra"], [str(s) for s in args.seeds]
    final = str(args.steps)

    def dig(node, path):
        for key in path:
            node = node[key]
        return node

    def per_seed(method, step, *path):
        return [dig(runs[method][seed]["evaluations"][step], path) for seed in seeds]

    def raw_values(*path):
        return [dig(raw[seed], path) for seed in seeds]

    out = []
    rows = []
    for method in args.methods:
        for ratio in map(str, EVAL_RATIOS):
            rows.append([method, ratio,
                         mean_std(per_seed(method, final, "reconstruction", ratio, "model_mse"), 4),
                         mean_std(per_seed(method, final, "reconstruction", ratio, "baseline_mse"), 4),
                         "**" + mean_std(per_seed(method, final, "reconstruction", ratio, "ratio"), 2) + "×**",
                         mean_std(per_seed(method, "0", "reconstruction", ratio, "ratio"), 2) + "×"])  # fmt: skip
    options = results["model_args"][args.methods[0]]
    space = f"target_norm {options.get('target_norm', 'minmax')}, statistics over {options.get('target_stats', 'all')} pixels"
    out.append(f"**(a) Masked reconstruction, held-out crops, random masking** (MSE in the target space ({space}) "
               "on masked pixels; baseline = per image and band, the mean of the visible pixels; targets ≥ 2× at "
               "0.75, ≥ 1.5× at 0.9)\n")  # fmt: skip
    out.append(table(["method", "mask ratio", "model MSE", "mean-of-visible MSE", "baseline / model",
                      "baseline / model, random init"], rows))  # fmt: skip

    for task, metric, title in (
        ("landcover", "macro_f1", "**(b) Frozen land-cover probes, probe-test cells: macro F1** "
                                  + ("(rule labels)" if args.data == "real" else "(the generator's labels)")),
        ("landcover", "accuracy", "**(b) Frozen land-cover probes, probe-test cells: accuracy**"),
        ("change", "f1_change", "**(c) Change probe, probe-test cells: F1 of the change class** (date 2 constructed)"),
    ):
        rows = []
        for method in args.methods:
            for label, step in (("pretrained", final), ("random init", "0")):
                rows.append([f"{method} {label}"] + [mean_std([metric_of(v, metric) for v in per_seed(method, step, task, kind, frac)])
                                                      for kind in ("linear", "knn") for frac in FRACTIONS])  # fmt: skip
        raw_sets = [("raw spectra |Δ mean|", ("change",))] if task == "change" else [
            ("raw spectra: mean", ("landcover", "mean")), ("raw spectra: mean + std", ("landcover", "mean+std"))]
        for label, path in raw_sets:
            rows.append([label] + [mean_std([metric_of(v, metric) for v in raw_values(*path, kind, frac)])
                                   for kind in ("linear", "knn") for frac in FRACTIONS])  # fmt: skip
        labelled = " / ".join(str(per_seed(args.methods[0], final, task, "linear", f, "labelled")[0]) for f in FRACTIONS)
        out.append(f"\n{title}; labelled cells 1 % / 10 % / all = {labelled} (seed {seeds[0]})\n")
        out.append(table(["features", *(f"{k} {f}" for k in ("linear", "k-NN") for f in FRACTIONS)], rows))

    rows = []
    for method in args.methods:
        rows.append([method,
                     mean_std(per_seed(method, final, "finetune", "macro_f1")),
                     mean_std(per_seed(method, "0", "finetune", "macro_f1")),
                     mean_std(per_seed(method, final, "finetune", "accuracy")),
                     mean_std(per_seed(method, "0", "finetune", "accuracy"))])  # fmt: skip
    out.append(f"\n**(d) Fine-tune with {args.finetune_chips} labelled 64 px chips, {args.finetune_steps} steps, "
               "probe-test cells**\n")  # fmt: skip
    out.append(table(["method", "macro F1 pretrained", "macro F1 scratch", "accuracy pretrained", "accuracy scratch"], rows))

    rows = []
    steps = sorted({int(k) for m in args.methods for s in seeds for k in runs[m][s]["evaluations"]})
    for method in args.methods:
        for step in map(str, steps):
            rows.append([method, f"{step} ({int(step) / args.steps:.0%})",
                         mean_std(per_seed(method, step, "reconstruction", "0.75", "ratio"), 2),
                         mean_std(per_seed(method, step, "reconstruction", "0.9", "ratio"), 2),
                         mean_std(per_seed(method, step, "landcover", "linear", "10%", "macro_f1"))])  # fmt: skip
    out.append("\n**(e) Learning curve** (reconstruction baseline / model; linear probe with 10 % labels, macro F1)\n")
    out.append(table(["method", "step", "ratio @0.75", "ratio @0.9", "linear 10% macro F1"], rows))

    rows = [[m, mean_std([runs[m][s]["samples_per_s"] for s in seeds], 1),
             mean_std([runs[m][s]["train_seconds"] for s in seeds], 0),
             mean_std([runs[m][s]["losses"][-1] for s in seeds], 4)] for m in args.methods]  # fmt: skip
    out.append(f"\n**Pretraining** ({args.steps} steps × batch {args.batch_size}, lr {args.lr:.2e}, "
               f"{args.precision}; wall time of the whole run {results['wall_seconds'] / 60:.1f} min)\n")  # fmt: skip
    out.append(table(["method", "samples/s", "train s", "last loss"], rows))
    return "\n".join(out)


def write_json_atomically(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["real", "synthetic"], default="real",
                        help="real: the Landsat regions; synthetic: generated scenes filled with the regions' real spectra")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100, help="pretraining optimizer steps")
    parser.add_argument("--batch-size", type=int, default=16)
    lr = parser.add_mutually_exclusive_group()
    lr.add_argument("--lr", type=float, default=None, help="absolute peak learning rate")
    lr.add_argument("--base-lr", type=float, default=1.6e-2,
                    help="MAE's rule: lr = base_lr × batch / 256, used unless --lr is given (default: 1e-3 at "
                         "batch 16; MAE's 1.5e-4 gives ~1e-5, far too low for a budget of ~100 steps)")
    parser.add_argument("--warmup-fraction", type=float, default=0.1)
    parser.add_argument("--min-lr-ratio", type=float, default=0.0)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--mask-ratio", type=float, default=0.9, help="pretraining mask ratio")
    parser.add_argument("--decoder-width", type=int, default=None, help="default: the configs' (512)")
    parser.add_argument("--decoder-depth", type=int, default=None, help="default: the configs' (4)")
    parser.add_argument("--decoder-heads", type=int, default=None, help="default: the configs' (16)")
    parser.add_argument("--target-norm", choices=["minmax", "standardize", "none"], default=None,
                        help="the reconstruction target's per-image normalisation (default: the configs', minmax)")
    parser.add_argument("--target-stats", choices=["all", "visible"], default=None,
                        help="per-image target statistics over all or the visible pixels (default: the configs')")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="bf16",
                        help="pretraining steps (bf16: CPU autocast); evaluations always fp32")
    parser.add_argument("--curve-points", nargs="+", type=float, default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--finetune-chips", type=int, default=4)
    parser.add_argument("--finetune-steps", type=int, default=30)
    parser.add_argument("--finetune-lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a 2-core machine shared with other jobs, 2 threads ran 4x slower "
                             "than 1; on an idle machine 2 are faster)")
    parser.add_argument("--out", type=Path, default=Path("outputs/representation_quality.json"))
    parser.add_argument("--quick", action="store_true",
                        help="plumbing smoke test: 6 steps, batch 4, seed 0, 3 fine-tune steps (< 2 min)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size, args.seeds, args.finetune_steps = 6, 4, [0], 3
        args.curve_points = [0.0, 1.0]
    args.lr_rule = "absolute" if args.lr is not None else f"base_lr {args.base_lr} × batch / 256"
    if args.lr is None:
        args.lr = scaled_lr(args.base_lr, args.batch_size)
    return args


def main() -> None:
    args = parse_args()
    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    means, stds = data_statistics()
    if args.data == "real":
        scene = standardise(read_mosaic(DATA / "olinda_l7/train/images")[0], means, stds)
        heldout, counts = load_heldout(means, stds)
    else:
        scene, heldout, counts = synthetic_data(means, stds)
    print(f"pretraining region {tuple(scene.shape)}; held-out: {counts}", flush=True)
    print(f"methods {args.methods}, seeds {args.seeds}, {args.steps} steps × batch {args.batch_size}, "
          f"lr {args.lr:.3g} ({args.lr_rule}), warmup {args.warmup_fraction}, {args.precision}, "
          f"{torch.get_num_threads()} threads", flush=True)  # fmt: skip

    results = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads()},
               "data": counts, "model_args": {m: model_args(m, args) for m in args.methods},
               "notes": [NOTES[args.data],
                         "the second date of the change pairs is constructed (radiometric change + built-up blobs)",
                         "every method is evaluated with random masking; step 0 = random initialisation"],
               "raw_spectra": {}, "runs": {m: {} for m in args.methods}}  # fmt: skip
    step0_cache = {}
    for seed in args.seeds:
        results["raw_spectra"][str(seed)] = raw_spectra_probes(heldout, seed)
        for method in args.methods:
            results["runs"][method][str(seed)] = pretrain(method, seed, args, scene, heldout, step0_cache)
            results["wall_seconds"] = time.perf_counter() - t_start
            write_json_atomically(results, args.out)  # partial results survive an interrupted run

    results["wall_seconds"] = time.perf_counter() - t_start
    report = markdown_report(results, args)
    results["markdown"] = report
    write_json_atomically(results, args.out)
    print("\n" + report)
    print(f"\ntotal wall time {results['wall_seconds']:.0f} s; raw numbers in {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""MRS vs SS-MAE's random spectral masking on scenes with redundant bands: leak, reconstruction, probes.

Scenes (both read through ``HSIPixelDataModule``, 7 × 7 pixel-centred patches, per-band standardised):

* ``example``: the example HSI scene (``examples/data/hsi_synthetic``: 96 × 96 px, 48 bands
  380–1050 nm + DSM, 6 classes, train/test by strips), GeoTIFFs;
* ``houston2018_files``: the same scene written in SS-MAE's Houston 2018 files
  (``houston_hsi.mat`` H × W × 50 uint16: the 48 bands then two more channels, here copies of the
  last two bands as a sensor's duplicated channels would be; ``houston_lidar.mat`` 2-D float32;
  ``houston_gt.mat``; ``houston_index.mat`` 0-based train/test pixels), 51 channels.

Per scene, spectral masking (``random`` = SS-MAE, ``redundant_spectra`` = MRS) and seed:

1. **Leak** (no training): on 512 random patches, the cosine similarity between each masked band
   and its most similar *visible* band (what the encoder can copy from), mean over masked bands.
2. **Pretraining**: ``ssmae_base_mae`` (SS-MAE's sizes, mask ratio 0.3 in both branches) for
   ``--steps`` AdamW steps (lr 1e-3, warmup 10 %, cosine; batch ``--batch``) on random pixels of
   the scene. Reported: the final spectral-branch loss on 512 held-out patches vs the
   mean-of-visible baseline on the same masked bands (``baseline_loss``), ratio < 1 is better.
3. **Probe**: the frozen encoder (mean of its ``[P·P, 2·D]`` tokens) → logistic regression on the
   train pixels → test OA / AA / κ. Baselines in the same run: the same encoder **randomly
   initialised** (same seed) and **raw spectra** (the centre pixel's standardised bands).

Prints one line per (scene, method, seed) and mean ± std over seeds (std over seeds, ddof 1).

    python benchmarks/mrs_vs_random_hsi.py [--seeds 0 1 2] [--steps 300] [--batch 64]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score

from terratorch_specmae.backbones import ssmae_base_mae
from terratorch_specmae.datamodules import HSIPixelDataModule

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples/data/hsi_synthetic"


def houston2018_files(out: Path) -> dict[str, str]:
    """The example scene in SS-MAE's Houston 2018 files (see the module docstring)."""
    import rasterio
    from scipy.io import savemat

    read = {name: rasterio.open(EXAMPLE / f"{name}.tif").read() for name in ("hsi", "aux", "labels", "split")}
    hsi = np.concatenate([read["hsi"], read["hsi"][-2:]])  # 48 bands + 2 duplicated channels
    out.mkdir(parents=True, exist_ok=True)
    savemat(out / "houston_hsi.mat", {"houston_hsi": (hsi.transpose(1, 2, 0) * 10000).round().astype(np.uint16)})
    savemat(out / "houston_lidar.mat", {"houston_lidar": read["aux"][0].astype(np.float32)})
    labels, split = read["labels"][0], read["split"][0]
    savemat(out / "houston_gt.mat", {"houston_gt": labels.astype(np.uint8)})
    savemat(out / "houston_index.mat", {
        "houston_train": np.argwhere((labels > 0) & (split == 1)).astype(np.float64),
        "houston_test": np.argwhere((labels > 0) & (split == 2)).astype(np.float64),
        "houston_all": np.argwhere(np.ones_like(labels, bool)).astype(np.float64),
    })  # fmt: skip
    return {"hsi_path": str(out / "houston_hsi.mat"), "aux_paths": [str(out / "houston_lidar.mat")],
            "labels_path": str(out / "houston_gt.mat"), "split_path": str(out / "houston_index.mat")}  # fmt: skip


def scenes(tmp: Path) -> dict[str, dict]:
    example = {"hsi_path": str(EXAMPLE / "hsi.tif"), "aux_paths": [str(EXAMPLE / "aux.tif")],
               "labels_path": str(EXAMPLE / "labels.tif"), "split_path": str(EXAMPLE / "split.tif")}  # fmt: skip
    return {"example": example, "houston2018_files": houston2018_files(tmp / "Houston2018")}


def load(args: dict) -> tuple[dict, torch.Tensor]:
    """Labelled train/test patches and every pixel's patch (for pretraining) of a scene."""
    labelled = HSIPixelDataModule(**args, patch_size=7, val_fraction=0.0)
    labelled.setup("fit")
    parts = {}
    for name in ("train", "test"):
        data = labelled.datasets[name]
        idx = range(len(data))
        parts[name] = (torch.stack([data[i]["image"] for i in idx]), np.array([data[i]["label"] for i in idx]))
    every = HSIPixelDataModule(args["hsi_path"], args["aux_paths"], patch_size=7)
    every.setup("predict")
    data = every.datasets["predict"]
    return parts, torch.from_numpy(np.stack([data.patch(i) for i in range(len(data))]))


def leak(masking, patches: torch.Tensor, seed: int) -> float:
    """Mean over masked bands of the cosine similarity to the most similar visible band (a band of
    zeros has similarity 0, as MRS treats it)."""
    from terratorch_specmae.models import CubeTokenizer

    b, c = patches.shape[:2]
    grid = CubeTokenizer(c, 1, patch_size=7, spectral_patch_size=1).grid(7, 7)
    mask = masking(grid, b, patches.device, image=patches, generator=torch.Generator().manual_seed(seed)).mask.bool()
    vectors = patches.reshape(b, c, -1).double()
    norms = vectors.norm(dim=-1, keepdim=True)
    unit = torch.where(norms > 0, vectors / norms.clamp(min=1e-12), torch.zeros_like(vectors))
    similarity = unit @ unit.transpose(1, 2)  # [b, c, c]
    visible = (~mask)[:, None, :]  # columns: candidate stand-ins
    best = similarity.masked_fill(~visible, -2.0).amax(dim=2)  # [b, c]: best visible stand-in per band
    return float(best[mask].mean())


def features(model, patches: torch.Tensor) -> np.ndarray:
    encoder = model.to_encoder().eval()
    with torch.no_grad():
        return torch.cat([encoder(chunk)[0].mean(dim=1) for chunk in patches.split(256)]).numpy()


def probe(train_x, train_y, test_x, test_y) -> dict[str, float]:
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    clf = LogisticRegression(max_iter=2000, C=1.0).fit((train_x - mean) / std, train_y)
    pred = clf.predict((test_x - mean) / std)
    return {"OA": accuracy_score(test_y, pred), "AA": balanced_accuracy_score(test_y, pred),
            "kappa": cohen_kappa_score(test_y, pred)}  # fmt: skip


def pretrain(model, pool: torch.Tensor, held_out: torch.Tensor, steps: int, batch: int, seed: int) -> float:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, betas=(0.9, 0.95))
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(pool), (batch,), generator=generator)
        loss = model(pool[idx], generator=generator).loss["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        out = model.spectral(held_out, generator=torch.Generator().manual_seed(1234))
    return float(out.loss["loss"] / out.loss["baseline_loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scene, data_args in scenes(Path(tmp)).items():
            parts, pool = load(data_args)
            (train_x, train_y), (test_x, test_y) = parts["train"], parts["test"]
            channels = pool.shape[1]
            rng = torch.Generator().manual_seed(99)
            held_out = pool[torch.randperm(len(pool), generator=rng)[:512]]
            print(f"{scene}: {channels} channels, {len(pool)} pixels, {len(train_y)} train / {len(test_y)} test pixels")
            for seed in args.seeds:
                raw = probe(train_x[:, :, 3, 3].numpy(), train_y, test_x[:, :, 3, 3].numpy(), test_y)
                rows.append((scene, "raw spectra", seed, None, None, raw))
                torch.manual_seed(seed)
                fresh = ssmae_base_mae(in_chans=channels)
                rows.append((scene, "random init", seed, None, None,
                             probe(features(fresh, train_x), train_y, features(fresh, test_x), test_y)))  # fmt: skip
                for masking in ("random", "redundant_spectra"):
                    torch.manual_seed(seed)
                    model = ssmae_base_mae(in_chans=channels, spectral_masking=masking)
                    leaked = leak(model.spectral.masking, held_out, seed)
                    start = time.perf_counter()
                    recon = pretrain(model, pool, held_out, args.steps, args.batch, seed)
                    scores = probe(features(model, train_x), train_y, features(model, test_x), test_y)
                    name = "MRS" if masking == "redundant_spectra" else "random (SS-MAE)"
                    rows.append((scene, name, seed, leaked, recon, scores))
                    print(f"  seed {seed} {name:<16} leak {leaked:.3f}  spectral loss / mean-of-visible {recon:.3f}  "
                          f"OA {scores['OA']:.3f} AA {scores['AA']:.3f} κ {scores['kappa']:.3f}  "
                          f"({time.perf_counter() - start:.0f} s)")  # fmt: skip
                print(f"  seed {seed} raw spectra OA {raw['OA']:.3f}; random init OA {rows[-3][5]['OA']:.3f}")
    print("\nmean ± std over seeds", args.seeds)
    print(f"{'scene':<18} {'method':<16} {'leak':>13} {'loss/baseline':>13} {'OA':>13} {'AA':>13} {'kappa':>13}")

    def cell(values) -> str:
        values = [v for v in values if v is not None]
        if not values:
            return f"{'—':>13}"
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0:.3f}".rjust(13)

    for scene in dict.fromkeys(r[0] for r in rows):
        for method in ("raw spectra", "random init", "random (SS-MAE)", "MRS"):
            sel = [r for r in rows if r[0] == scene and r[1] == method]
            print(f"{scene:<18} {method:<16} {cell([r[3] for r in sel])} {cell([r[4] for r in sel])} "
                  f"{cell([r[5]['OA'] for r in sel])} {cell([r[5]['AA'] for r in sel])} {cell([r[5]['kappa'] for r in sel])}")


if __name__ == "__main__":
    main()

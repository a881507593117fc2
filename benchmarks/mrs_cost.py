"""MRS masking cost as a fraction of an SS-MAE pretraining step, and SS-MAE pretraining throughput.

All in one process, so every compared figure shares the machine's state:

* Model: ``ssmae_base_mae`` (SS-MAE's sizes: width 256, depth 2, 8 heads per branch, decoders
  alike, mask ratio 0.3 in both branches) on pixel-centred 7 × 7 patches.
* Inputs: patches of a generated scene (``terratorch_specmae.datamodules.synthetic_hsi``, smooth
  correlated spectra) standardised per band, plus auxiliary channels:
  - ``houston``: 48 HSI bands + 1 DSM (Houston 2018's band count), 49 spectral tokens;
  - ``berlin``: 244 HSI bands + 4 SAR channels (Berlin's), 248 spectral tokens.
* **Masking alone**: median wall time of one call of the spectral branch's strategy
  (``random`` vs ``redundant_spectra``) on the batch, over ``--windows`` windows of ``--calls``.
* **Step**: forward + backward + AdamW of the whole SS-MAE (both branches) with each spectral
  strategy, median over interleaved windows after ``--warmup``; samples/s from the MRS step.
* **MRS overhead** = (MRS masking − random masking) / random step (target ≤ 5 %); the whole-step
  ratio MRS / random is printed too (noisier).
* FLOPs per sample (forward + backward, CPU attention counted) and achieved FLOP/s as a fraction
  of the fp32 matmul peak measured in the same run.

Examples (from the repository root)::

    python benchmarks/mrs_cost.py                     # both band sets, batch 64, fp32 (~4 min on 2 CPU cores)
    python benchmarks/mrs_cost.py --datasets houston --windows 3
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch

from masking_cost import time_masking  # same directory
from pretrain_throughput import (  # same directory: the shared timing and FLOP helpers
    clean_median,
    count_flops,
    describe_machine,
    interleaved_windows,
    make_step,
    matmul_peak,
)
from terratorch_specmae.datamodules.pixel_patches import pixel_patches
from terratorch_specmae.datamodules.synthetic_hsi import make_scene
from terratorch_specmae.models import SSMAE

DATASETS = {"houston": (48, ["DSM"]), "berlin": (244, ["VV", "VH", "HH", "HV"])}
PATCH = 7


def batch_of_patches(num_bands: int, aux: list[str], batch_size: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    scene = make_scene(size=64, num_bands=num_bands, seed=seed)
    rng = np.random.default_rng(seed)
    aux_layers = [scene.dsm[None]] + [rng.standard_normal((1, 64, 64)).astype(np.float32) for _ in aux[1:]]
    stack = np.concatenate([scene.hsi, *aux_layers[: len(aux)]])
    stack = (stack - stack.mean(axis=(1, 2), keepdims=True)) / stack.std(axis=(1, 2), keepdims=True)
    rows, cols = rng.integers(0, 64, batch_size), rng.integers(0, 64, batch_size)
    return torch.from_numpy(pixel_patches(stack.astype(np.float32), rows, cols, PATCH)), scene.band_names + aux


def run_dataset(name: str, args, device, peak: float) -> dict:
    num_bands, aux = DATASETS[name]
    x, bands = batch_of_patches(num_bands, aux, args.batch_size, args.seed)
    x = x.to(device)
    runs = {}
    for strategy in ("random", "redundant_spectra"):
        torch.manual_seed(args.seed)
        model = SSMAE(bands=bands, window_size=PATCH, spectral_masking=strategy).to(device).train()
        runs[strategy] = model
    grid = runs["random"].spectral.encoder.default_grid

    with torch.no_grad():
        mask_times = {s: [] for s in runs}
        for _ in range(args.windows):
            for strategy, model in runs.items():
                mask_times[strategy].append(time_masking(model.spectral.masking, grid, x, device, args.calls))
    mask_time = {s: statistics.median(t) for s, t in mask_times.items()}

    steps = {}
    for strategy, model in runs.items():
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        steps[strategy] = make_step(model, lambda b, m=model: m(b).loss["loss"], optimizer, x, device, "fp32")
        for _ in range(args.warmup):
            steps[strategy]()
    times, loads, _ = interleaved_windows(steps, args.windows, args.steps, device)
    step_time = {s: clean_median(times[s], loads[s], args.max_other_load)[0] for s in runs}
    mrs = runs["redundant_spectra"]
    flops = count_flops(mrs, lambda b: mrs(b).loss["loss"], x, device, "fp32") / args.batch_size
    achieved = flops * args.batch_size / step_time["redundant_spectra"]
    return {
        "bands": len(bands), "spectral_tokens": grid.num_tokens, "pixel_tokens": PATCH * PATCH,
        "masking_ms": {s: 1e3 * t for s, t in mask_time.items()},
        "step_ms": {s: 1e3 * t for s, t in step_time.items()},
        "mrs_overhead_over_random": (mask_time["redundant_spectra"] - mask_time["random"]) / step_time["random"],
        "mrs_step_ratio": step_time["redundant_spectra"] / step_time["random"],
        "samples_per_s": args.batch_size / step_time["redundant_spectra"],
        "gflop_per_sample": flops / 1e9,
        "gflop_per_s": achieved / 1e9,
        "of_fp32_peak": achieved / peak,
    }


def report(name: str, r: dict, args) -> None:
    print(f"\n== {name}: {r['bands']} bands ({r['spectral_tokens']} band tokens, {r['pixel_tokens']} pixel tokens), "
          f"7 × 7 patches, batch {args.batch_size}, fp32")
    for s in ("random", "redundant_spectra"):
        print(f"  spectral masking {s:<18} masking {r['masking_ms'][s]:8.3f} ms   step {r['step_ms'][s]:8.1f} ms   "
              f"masking / random step {r['masking_ms'][s] / r['step_ms']['random']:.2%}")
    print(f"  MRS adds {r['mrs_overhead_over_random']:.2%} of a random-masking step (target <= 5%); "
          f"whole-step ratio MRS / random {r['mrs_step_ratio']:.3f}")
    print(f"  SS-MAE + MRS pretraining: {r['samples_per_s']:.0f} samples/s, {r['gflop_per_sample']:.3f} GFLOP/sample, "
          f"{r['gflop_per_s']:.0f} GFLOP/s = {r['of_fp32_peak']:.1%} of the fp32 matmul peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-other-load", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("highest")  # true fp32 (importing TerraTorch sets "medium")
    print(f"device: {describe_machine(device)} ({device}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    peak = max(matmul_peak(device, torch.float32, [1024, 2048]), 1.0)
    print(f"fp32 matmul peak: {peak / 1e9:.0f} GFLOP/s")
    results = {"batch_size": args.batch_size, "fp32_peak_gflops": peak / 1e9, "datasets": {}}
    for name in args.datasets:
        results["datasets"][name] = run_dataset(name, args, device, peak)
        report(name, results["datasets"][name], args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

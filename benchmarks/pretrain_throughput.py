"""Pretraining-step throughput: S2MAE vs TerraTorch's PrithviMAE at equal tokens, and MFU.

One step is forward + backward + AdamW update. Both models get the same width, depth, heads,
decoder (512 wide, depth 4, 16 heads), mask ratio and the same tokens: our cubes of t=3 bands ×
8 × 8 px over 12 bands × 128² are 4 × 16 × 16 = 1024 tokens of 192 values; PrithviMAE sees the
same numbers as 4 "frames" of 3 channels with patch (1, 8, 8): also 1024 tokens of 192 values.

Achieved FLOP/s = FLOPs of one step (counted by torch's FlopCounterMode) / step time, reported as
a fraction of the matmul peak measured in the same run for the same dtype. Everything is
measured in one process, with the two models interleaved so machine noise hits both alike.

    python benchmarks/pretrain_throughput.py                 # ViT-B, fp32 and bf16
    python benchmarks/pretrain_throughput.py --size tiny --steps 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from terratorch_specmae.backbones import VIT_SIZES, build_mae

BANDS, IMG, T, P = 12, 128, 3, 8


def build_models(size: str, mask_ratio: float) -> dict[str, tuple[torch.nn.Module, callable]]:
    from terratorch.models.backbones.prithvi_mae import PrithviMAE

    spec = VIT_SIZES[size]
    ours = build_mae(size, img_size=IMG, patch_size=P, spectral_patch_size=T, mask_ratio=mask_ratio)
    prithvi = PrithviMAE(
        img_size=IMG,
        patch_size=(1, P, P),
        num_frames=BANDS // T,
        in_chans=T,
        decoder_embed_dim=512,
        decoder_depth=4,
        decoder_num_heads=16,
        mask_ratio=mask_ratio,
        **spec,
    )
    ours_tokens = ours.encoder.tokenizer.grid(IMG, IMG).num_tokens
    prithvi_tokens = prithvi.encoder.patch_embed.num_patches
    assert ours_tokens == prithvi_tokens == 1024, (ours_tokens, prithvi_tokens)

    def ours_loss(x):
        return ours(x).loss["loss"]

    def prithvi_loss(x):
        # [B, 12, H, W] → [B, 3, 4, H, W]: band group g becomes frame g (same values per token)
        b = x.shape[0]
        frames = x.reshape(b, BANDS // T, T, IMG, IMG).transpose(1, 2)
        return prithvi(frames, mask_ratio=mask_ratio)[0]["loss"]

    return {"S2MAE": (ours, ours_loss), "PrithviMAE": (prithvi, prithvi_loss)}


def autocast(device: torch.device, dtype: str):
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_fn(model, loss_fn, optimizer, x, device, dtype):
    def step():
        with autocast(device, dtype):
            loss = loss_fn(x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def count_flops(model, loss_fn, x, device, dtype) -> float:
    with FlopCounterMode(display=False) as counter:
        with autocast(device, dtype):
            loss = loss_fn(x)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def matmul_peak(device: torch.device, dtype: torch.dtype, sizes=(2048, 4096), repeats: int = 5) -> float:
    """Best FLOP/s of square matmuls of the given sizes."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        a @ b
        sync(device)
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            sync(device)
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(VIT_SIZES), default="base")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--mask-ratio", type=float, default=0.9)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per window")
    parser.add_argument("--windows", type=int, default=3, help="timed windows per model and mode (median)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    models = build_models(args.size, args.mask_ratio)
    x = torch.randn(args.batch_size, BANDS, IMG, IMG, device=device)
    peaks = {"fp32": matmul_peak(device, torch.float32), "bf16": matmul_peak(device, torch.bfloat16)}
    print(f"device {device} ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"matmul peak: fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")

    results = []
    for mode in args.modes:
        steps, flops, times = {}, {}, {name: [] for name in models}
        for name, (model, loss_fn) in models.items():
            model.to(device).train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
            steps[name] = step_fn(model, loss_fn, optimizer, x, device, mode)
            flops[name] = count_flops(model, loss_fn, x, device, mode)
            for _ in range(args.warmup):
                steps[name]()
        sync(device)
        for _ in range(args.windows):  # interleaved windows
            for name in models:
                start = time.perf_counter()
                for _ in range(args.steps):
                    steps[name]()
                sync(device)
                times[name].append((time.perf_counter() - start) / args.steps)
        for name in models:
            step_time = statistics.median(times[name])
            achieved = flops[name] / step_time
            results.append({
                "model": name,
                "mode": mode,
                "samples_per_s": args.batch_size / step_time,
                "gflop_per_sample": flops[name] / args.batch_size / 1e9,
                "achieved_gflops": achieved / 1e9,
                "fraction_of_peak": achieved / peaks[mode],
            })

    print(f"\nViT-{args.size}, {BANDS} bands × {IMG}² px, 1024 tokens, mask {args.mask_ratio}, batch {args.batch_size}")
    print(f"{'model':<12}{'mode':<6}{'samples/s':>11}{'GFLOP/sample':>14}{'GFLOP/s':>10}{'of peak':>9}")
    for r in results:
        print(f"{r['model']:<12}{r['mode']:<6}{r['samples_per_s']:>11.2f}{r['gflop_per_sample']:>14.1f}"
              f"{r['achieved_gflops']:>10.0f}{r['fraction_of_peak']:>9.1%}")
    ratios = {}
    for mode in args.modes:
        by = {r["model"]: r for r in results if r["mode"] == mode}
        ratios[mode] = by["S2MAE"]["samples_per_s"] / by["PrithviMAE"]["samples_per_s"]
        print(f"S2MAE / PrithviMAE samples/s ({mode}): {ratios[mode]:.2f}×")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "peaks_gflops": {k: v / 1e9 for k, v in peaks.items()},
                       "results": results, "ratios": ratios}, f, indent=2)


if __name__ == "__main__":
    main()

"""Peak training memory per sample of the S2MAE pretraining step, per model size, with and without
activation checkpointing.

For each size (tiny, small, base, large) and ``grad_checkpointing`` off / on, a child process builds
``build_mae(size, img_size=128, mask 0.9, decoder 512 × 4 × 16)`` on the 12 Sentinel-2 bands, runs
two pretraining steps (forward + backward + fused AdamW, bf16 autocast by default) at batch
``b1`` and, in another child, at batch ``b2``, and reports its peak memory: ``ru_maxrss`` of the
child on CPU, ``torch.cuda.max_memory_allocated`` on a GPU. Memory per sample is
``(peak(b2) − peak(b1)) / (b2 − b1)``: the activations one more sample costs, with the model,
gradients and optimizer state (the same at both batch sizes) cancelled out; the fixed part is
``peak(b1) − b1 · per sample``. Each configuration runs in a fresh process so peaks do not mix.

    python benchmarks/memory_per_sample.py                         # 4 sizes × 2, batches 2 and 6 (~6 min, 2 CPU cores)
    python benchmarks/memory_per_sample.py --sizes tiny base --batches 2 4
    python benchmarks/memory_per_sample.py --device cuda --batches 8 32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = ("tiny", "small", "base", "large")


def child(size: str, batch: int, checkpointing: bool, device: str, mode: str) -> None:
    """Run two steps and print the peak memory in bytes (the last line of stdout)."""
    import resource

    import torch

    from terratorch_specmae.backbones import build_mae

    model = build_mae(size, img_size=128, mask_ratio=0.9, decoder_embed_dim=512, decoder_depth=4,
                      decoder_num_heads=16, grad_checkpointing=checkpointing).to(device)  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randn(batch, 12, 128, 128, device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(2):
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=mode == "bf16"):
            loss = model(x).loss["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    print(peak)


def measure(size: str, batch: int, checkpointing: bool, device: str, mode: str) -> int:
    cmd = [sys.executable, __file__, "--child", size, str(batch), str(int(checkpointing)), "--device", device, "--mode", mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    parser.add_argument("--batches", nargs=2, type=int, default=[2, 6], metavar=("B1", "B2"))
    parser.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES") else "cpu")
    parser.add_argument("--mode", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", nargs=3, metavar=("SIZE", "BATCH", "CKPT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), bool(int(args.child[2])), args.device, args.mode)
        return
    b1, b2 = args.batches
    start, rows = time.perf_counter(), []
    print(f"S2MAE pretraining step, 12 bands × 128² px, mask 0.9, {args.mode}, device {args.device}, batches {b1} and {b2}")
    header = f"{'size':<7}{'checkpointing':>14}{'peak@b1 GB':>12}{'peak@b2 GB':>12}{'per sample MB':>15}{'fixed GB':>10}"
    print(header + "\n" + "-" * len(header), flush=True)
    for size in args.sizes:
        for checkpointing in (False, True):
            p1, p2 = (measure(size, b, checkpointing, args.device, args.mode) for b in (b1, b2))
            per_sample = (p2 - p1) / (b2 - b1)
            rows.append({"size": size, "grad_checkpointing": checkpointing, "peak_b1": p1, "peak_b2": p2,
                         "per_sample_bytes": per_sample, "fixed_bytes": p1 - b1 * per_sample})  # fmt: skip
            print(f"{size:<7}{'on' if checkpointing else 'off':>14}{p1 / 1e9:>12.2f}{p2 / 1e9:>12.2f}"
                  f"{per_sample / 1e6:>15.0f}{(p1 - b1 * per_sample) / 1e9:>10.2f}", flush=True)
    for size in args.sizes:
        off, on = (r["per_sample_bytes"] for r in rows if r["size"] == size)
        print(f"{size}: activation checkpointing keeps {on / off:.0%} of the memory per sample")
    print(f"total time {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()

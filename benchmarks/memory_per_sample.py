"""Peak training memory per sample of the S2MAE pretraining step, per model size, with and without
activation checkpointing.

For each size (tiny, small, base, large) and ``grad_checkpointing`` off / on, a child process builds
``build_mae(size, img_size=128, mask 0.9, decoder 512 × 4 × 16)`` on the 12 Sentinel-2 bands, runs
a warm-up pretraining step (forward + backward + fused AdamW, bf16 autocast by default; it also
allocates the optimizer state) and then measures a second step: on CPU, the resident memory is
sampled every millisecond by a thread (``/proc/self/statm``; glibc is told to return every block
of 64 kB or more to the system when freed, ``MALLOC_MMAP_THRESHOLD_``, so the resident size
follows live memory) and the step's peak above its starting level is kept; on a GPU,
``torch.cuda.max_memory_allocated`` after a reset, above the allocated memory at the start.
This is done at batch ``b1`` and, in another child, ``b2``; memory per sample is
``(step peak(b2) − step peak(b1)) / (b2 − b1)`` — what one more sample costs, activations
mostly. The resident size at the start of the measured step (weights, gradients' buffers,
optimizer state, the libraries) is reported too.

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


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakSampler:
    """Highest resident size seen by a background thread sampling every ``period`` seconds."""

    def __init__(self, period: float = 0.001) -> None:
        import threading

        self.period, self.peak, self.stop = period, resident_bytes(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, resident_bytes())
            time.sleep(self.period)

    def __enter__(self) -> PeakSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, resident_bytes())


def child(size: str, batch: int, checkpointing: bool, device: str, mode: str) -> None:
    """Run a warm-up step, then print ``<start bytes> <step peak above start>`` of a measured step."""
    import torch

    from terratorch_specmae.backbones import build_mae

    model = build_mae(size, img_size=128, mask_ratio=0.9, decoder_embed_dim=512, decoder_depth=4,
                      decoder_num_heads=16, grad_checkpointing=checkpointing).to(device)  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randn(batch, 12, 128, 128, device=device)

    def step() -> None:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=mode == "bf16"):
            loss = model(x).loss["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: allocates the optimizer state
    if device.startswith("cuda"):
        from pretrain_throughput import cuda_step_memory  # same directory: the shared helpers

        start, peak = cuda_step_memory(step, torch.device(device))
    else:
        start = resident_bytes()
        with PeakSampler() as sampler:
            step()
        peak = sampler.peak
    print(start, peak - start)


def measure(size: str, batch: int, checkpointing: bool, device: str, mode: str) -> tuple[int, int]:
    """``(resident bytes at the start of the measured step, its peak above that)`` from a fresh process."""
    cmd = [sys.executable, __file__, "--child", size, str(batch), str(int(checkpointing)), "--device", device, "--mode", mode]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}  # freed blocks ≥ 64 kB go back to the system
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    start, step_peak = out.stdout.strip().splitlines()[-1].split()
    return int(start), int(step_peak)


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
    began, rows = time.perf_counter(), []
    print(f"S2MAE pretraining step, 12 bands × 128² px, mask 0.9, {args.mode}, device {args.device}, batches {b1} and {b2}")
    header = (f"{'size':<7}{'checkpointing':>14}{'start GB':>10}{f'step@{b1} MB':>12}{f'step@{b2} MB':>12}"
              f"{'per sample MB':>15}")
    print(header + "\n" + "-" * len(header), flush=True)
    for size in args.sizes:
        for checkpointing in (False, True):
            (start, p1), (_, p2) = (measure(size, b, checkpointing, args.device, args.mode) for b in (b1, b2))
            per_sample = (p2 - p1) / (b2 - b1)
            rows.append({"size": size, "grad_checkpointing": checkpointing, "start_bytes": start, "step_peak_b1": p1,
                         "step_peak_b2": p2, "per_sample_bytes": per_sample})  # fmt: skip
            print(f"{size:<7}{'on' if checkpointing else 'off':>14}{start / 1e9:>10.2f}{p1 / 1e6:>12.0f}{p2 / 1e6:>12.0f}"
                  f"{per_sample / 1e6:>15.0f}", flush=True)
    for size in args.sizes:
        off, on = (r["per_sample_bytes"] for r in rows if r["size"] == size)
        print(f"{size}: activation checkpointing keeps {on / off:.0%} of the memory per sample")
    print(f"total time {time.perf_counter() - began:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()

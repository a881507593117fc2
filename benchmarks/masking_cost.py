"""Cost of each masking strategy as a fraction of a pretraining step, and what ``decode_fraction`` saves.

All in one process, so every compared figure shares the machine's state:

* Models (encoder size ``--size``, default ViT-B; decoder 512 wide × 4 blocks × 16 heads; mask
  ratio 0.9; the 12 Sentinel-2 L2A bands):
  - **SIGMAE**: ``build_mae(size, "sigmae", img_size=224)`` — 2D patches of 16 px over all bands,
    14 × 14 = 196 tokens;
  - **S2MAE**: ``build_mae(size, "s2mae", img_size=128)`` — cubes of 3 bands × 8 × 8 px,
    4 × 16 × 16 = 1024 tokens.
* Input: a fixed batch of positive "reflectance" values (``rand · 3000 + 1``), so the indices are
  finite; saliency masking computes NDVI, NDWI and NDBI on it like on real data.
* **Masking alone**: median wall time of one call of each strategy on that batch (``random``,
  ``cube_random`` where the tokenizer allows it, ``spatially_consistent``, ``saliency`` at
  progress 0.5), over ``--windows`` windows of ``--calls`` calls.
* **Step**: forward + backward + AdamW update with the strategy inside the model, median over
  ``--windows`` windows of ``--steps`` steps after ``--warmup``; the strategies' windows are
  interleaved so machine noise hits them alike (and windows where other processes kept more
  than ``--max-other-load`` of the cores busy are left out, as in ``pretrain_throughput.py``).
* Printed: each strategy's masking time as a fraction of the ``random`` step, the **saliency
  overhead** = (saliency masking − random masking) / random step (target ≤ 5 %), and the
  step-time ratio saliency / random measured directly (noisier: it is the difference of two
  full steps).
* **decode_fraction** (saliency masking): step time and FLOPs (forward + backward, CPU attention
  counted) at ``--fractions`` relative to 1.0; the tokens entering the first decoder block are
  checked by a hook (visible + ceil(f · masked)).

Examples (from the repository root)::

    python benchmarks/masking_cost.py                          # ViT-B, fp32 (~10 min on 2 CPU cores)
    python benchmarks/masking_cost.py --size tiny --windows 3  # quick check
    python benchmarks/masking_cost.py --models sigmae --mode bf16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch

from pretrain_throughput import (  # same directory: the shared timing and FLOP helpers
    clean_median,
    count_flops,
    describe_machine,
    interleaved_windows,
    make_step,
    sync,
)
from terratorch_specmae.backbones import VIT_SIZES, build_mae
from terratorch_specmae.masking import num_visible

DECODER = {"decoder_embed_dim": 512, "decoder_depth": 4, "decoder_num_heads": 16}
MODELS = {"sigmae": 224, "s2mae": 128}  # family → image size
STRATEGIES = ("random", "cube_random", "spatially_consistent", "saliency")


def strategies_for(family: str) -> list[str]:
    return [s for s in STRATEGIES if not (s == "cube_random" and family == "sigmae")]


def build(family: str, size: str, masking: str, mask_ratio: float, decode_fraction: float = 1.0):
    model = build_mae(
        size, family, img_size=MODELS[family], masking=masking, mask_ratio=mask_ratio,
        decode_fraction=decode_fraction, **DECODER,
    )
    return model, (lambda x: model(x, progress=0.5).loss["loss"])


def time_masking(masking, grid, x: torch.Tensor, device: torch.device, calls: int) -> float:
    """Seconds per call of a masking strategy on the batch ``x`` laid out as ``grid`` (progress 0.5)."""
    start = time.perf_counter()
    for _ in range(calls):
        masking(grid, x.shape[0], device, image=x, progress=0.5)
    sync(device)
    return (time.perf_counter() - start) / calls


def decoder_tokens(model, loss_fn, x) -> int:
    seen = []
    hook = model.decoder.blocks[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[1]))
    loss_fn(x).backward()
    model.zero_grad(set_to_none=True)
    hook.remove()
    return seen[0]


def timed_steps(runs: dict, args, device) -> dict[str, float]:
    """Median step time per run name, windows interleaved across the runs."""
    steps = {}
    for name, (model, loss_fn, x) in runs.items():
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        steps[name] = make_step(model, loss_fn, optimizer, x, device, args.mode)
        for _ in range(args.warmup):
            steps[name]()
    times, loads, _ = interleaved_windows(steps, args.windows, args.steps, device)
    return {n: clean_median(times[n], loads[n], args.max_other_load)[0] for n in runs}


def run_family(family: str, args, device) -> dict:
    torch.manual_seed(args.seed)
    bands = 12
    img = MODELS[family]
    x = (torch.rand(args.batch_size, bands, img, img, generator=torch.Generator().manual_seed(args.seed)) * 3000 + 1)
    x = x.to(device)
    result = {"image_size": img, "strategies": {}, "decode_fraction": {}}

    # the masking call alone
    runs = {}
    for name in strategies_for(family):
        model, loss_fn = build(family, args.size, name, args.mask_ratio)
        model.to(device).train()
        runs[name] = (model, loss_fn, x)
    grid = runs["random"][0].encoder.tokenizer.grid(img, img)
    result["tokens"], result["visible"] = grid.num_tokens, num_visible(grid.num_tokens, args.mask_ratio)
    with torch.no_grad():
        mask_times = {n: [] for n in runs}
        for _ in range(args.windows):
            for name, (model, _, _) in runs.items():
                mask_times[name].append(time_masking(model.masking, grid, x, device, args.calls))
    mask_time = {n: statistics.median(t) for n, t in mask_times.items()}

    # full steps with each strategy
    step_time = timed_steps(runs, args, device)
    base = step_time["random"]
    for name in runs:
        result["strategies"][name] = {
            "masking_ms": 1e3 * mask_time[name],
            "step_ms": 1e3 * step_time[name],
            "masking_fraction_of_step": mask_time[name] / base,
        }
    result["saliency_overhead_over_random"] = (mask_time["saliency"] - mask_time["random"]) / base
    result["saliency_step_ratio"] = step_time["saliency"] / base
    del runs

    # decode_fraction with saliency masking
    runs, flops, tokens = {}, {}, {}
    for f in [1.0, *args.fractions]:
        model, loss_fn = build(family, args.size, "saliency", args.mask_ratio, decode_fraction=f)
        model.to(device).train()
        key = f"{f:g}"
        runs[key] = (model, loss_fn, x)
        tokens[key] = decoder_tokens(model, loss_fn, x)
        masked = grid.num_tokens - result["visible"]
        expected = grid.num_tokens if f >= 1 else result["visible"] + max(1, math.ceil(f * masked - 1e-6))
        assert tokens[key] == expected, (family, f, tokens[key], expected)
        flops[key] = count_flops(model, loss_fn, x, device, args.mode) / args.batch_size
    step_time = timed_steps(runs, args, device)
    for key in runs:
        result["decode_fraction"][key] = {
            "decoder_tokens": tokens[key],
            "step_ms": 1e3 * step_time[key],
            "step_time_vs_full": step_time[key] / step_time["1"],
            "gflop_per_sample": flops[key] / 1e9,
            "flops_vs_full": flops[key] / flops["1"],
        }
    return result


def report(family: str, r: dict, args) -> None:
    print(f"\n== {family.upper()} ViT-{args.size}: {r['image_size']} px, {r['tokens']} tokens, "
          f"{r['visible']} visible (mask ratio {args.mask_ratio}), batch {args.batch_size}, {args.mode}")
    print(f"{'strategy':<22}{'masking ms':>12}{'step ms':>11}{'masking / random step':>24}")
    for name, s in r["strategies"].items():
        print(f"{name:<22}{s['masking_ms']:>12.2f}{s['step_ms']:>11.0f}{s['masking_fraction_of_step']:>24.2%}")
    print(f"saliency masking adds {r['saliency_overhead_over_random']:.2%} of a random-masking step "
          f"(target <= 5%); step time saliency / random, measured directly: {r['saliency_step_ratio']:.3f}")
    print(f"{'decode_fraction':<18}{'decoder tokens':>16}{'step ms':>10}{'time vs 1.0':>13}"
          f"{'GFLOP/sample':>14}{'FLOPs vs 1.0':>14}")
    for key, d in r["decode_fraction"].items():
        print(f"{key:<18}{d['decoder_tokens']:>16}{d['step_ms']:>10.0f}{d['step_time_vs_full']:>13.3f}"
              f"{d['gflop_per_sample']:>14.2f}{d['flops_vs_full']:>14.3f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(VIT_SIZES), default="base", help="encoder size (default: base)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--mask-ratio", type=float, default=0.9)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.5, 0.25],
                        help="decode_fraction values compared with 1.0 (default: 0.5 0.25)")
    parser.add_argument("--mode", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per window (default: 2)")
    parser.add_argument("--windows", type=int, default=5, help="timed windows per run (default: 5)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--calls", type=int, default=10, help="masking calls per window (default: 10)")
    parser.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-other-load", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("highest")  # true fp32 (importing TerraTorch sets "medium")
    print(f"device: {describe_machine(device)} ({device}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    results = {"size": args.size, "mode": args.mode, "batch_size": args.batch_size, "models": {}}
    for family in args.models:
        results["models"][family] = run_family(family, args, device)
        report(family, results["models"][family], args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

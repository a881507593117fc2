"""Pretraining-step throughput: S2MAE vs TerraTorch's PrithviMAE at equal tokens, and MFU.

What is measured, all in one process so that every figure that is compared shares the machine's
state at the time:

* One pretraining step = forward + backward + AdamW update (``zero_grad(set_to_none=True)``).
* S2MAE: ``build_mae(size, img_size=128, mask_ratio=0.9, decoder 512 wide × 4 blocks × 16 heads)``
  on the 12 Sentinel-2 L2A bands (the default), input ``[B, 12, 128, 128]``. Its tokens are
  cubes of t=3 bands × 8 × 8 px: 4 × 16 × 16 = 1024 tokens of 192 values.
* PrithviMAE (``terratorch.models.backbones.prithvi_mae.PrithviMAE``) with the same encoder
  width/depth/heads, the same decoder and mask ratio, and the same tokens: 4 "frames" of 3
  channels with patch (1, 8, 8), input ``[B, 3, 4, 128, 128]`` (the same numbers, band group g
  as frame g): also 1024 tokens of 192 values. Token counts, values per token and the sequence
  lengths that actually reach the first encoder and decoder blocks are asserted equal.
* Modes: fp32, and bf16 autocast (``torch.autocast(device.type, dtype=torch.bfloat16)``).
  Importing TerraTorch sets ``torch.set_float32_matmul_precision("medium")`` as a side effect
  (its Clay v1.5 backbone module does), which lets fp32 matmuls run in bf16 on CPUs with AMX
  (TF32/bf16 on GPUs). The script therefore sets the precision itself after building the
  models: ``--fp32-matmul-precision highest`` (default, true fp32), or ``medium`` to measure what
  a process that imported TerraTorch gets. It applies to the matmul peaks too.
* samples/s: median over ``--windows`` timed windows of ``--steps`` steps each, after
  ``--warmup`` steps; the two models' windows are interleaved (A B, B A, A B, ...) so machine
  noise hits both alike. On Linux, the CPU time other processes used during each window is
  read from /proc/stat; windows where it exceeds ``--max-other-load`` (fraction of all cores)
  are left out of the medians when enough clean windows remain (all are printed). The ratio
  S2MAE / PrithviMAE is given from the medians and, as a check, as the median of the ratios of
  adjacent (paired) windows.
* FLOPs of one forward + backward, counted by ``torch.utils.flop_counter.FlopCounterMode``.
  Torch's counter has no formula for the CPU flash-attention kernel
  (``aten._scaled_dot_product_flash_attention_for_cpu`` and its backward), so it would silently
  drop all attention FLOPs on CPU; this script registers formulas for them that follow torch's
  own convention for the GPU attention kernels (2 matmuls forward, 5 backward incl. recompute).
* Achieved FLOP/s = FLOPs per step / median step time, and its fraction of the matmul peak of
  the matching dtype measured in the same run (best of square ``torch.matmul`` at
  ``--matmul-sizes``, timed before and after the model runs; the max is used).
* On CUDA, the peak memory of one more step per model (``torch.cuda.max_memory_allocated``), and
  how much of it the step added above what was held before it.
* ``--compile ours|both`` compiles the transformer blocks of our models, or of PrithviMAE's too
  (``nn.Module.compile``; ours via the ``compile`` model option) and times them after compilation; ``--no-fused-adamw`` uses
  AdamW's per-parameter loop instead of the fused kernel (both models get the same optimizer).
* ``--extra sigmae ssmae`` adds rows (not in the ratio) for the SIGMAE ViT (2D patches of 8 px over
  the same 12 bands, saliency masking) and the SS-MAE host (7 × 7 patches of 49 bands + DSM,
  batch ``--ssmae-batch-size``), each with samples/s and its fraction of the peak.
* ``--cpu-attention-kernel`` (default on CPUs with AVX512-BF16) adds a row ``S2MAE+kernel``: the
  same S2MAE model with our bf16 CPU attention kernel (``cpu_attention_kernel=True``), bf16 mode
  only (the kernel is bf16-only; in fp32 the model is the ``S2MAE`` row), with its own ratio to
  PrithviMAE; the extra rows use the kernel too. FLOPs are counted with the kernel off (the same
  arithmetic, which torch's counter cannot see inside our extension).
* ``--profile`` adds a ``torch.profiler`` breakdown of one step per model and mode (top ops by
  self CPU / device time, side by side), taken after that mode's timed windows.

Examples (from the repository root)::

    python benchmarks/pretrain_throughput.py                      # ViT-B, fp32 + bf16 (~7 min, 2 CPU cores)
    python benchmarks/pretrain_throughput.py --size tiny --windows 3 --warmup 1   # quick check (~2-3 min)
    python benchmarks/pretrain_throughput.py --modes bf16 --profile --json out.json
    python benchmarks/pretrain_throughput.py --device cuda        # the default when a GPU is present
    python benchmarks/pretrain_throughput.py --modes bf16 --compile --extra sigmae ssmae
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from terratorch_specmae.backbones import build_mae, build_ssmae
from terratorch_specmae.variants import VIT_SIZES
from terratorch_specmae.layers.attention import KernelAttention
from terratorch_specmae.layers.attention import cpu_has_avx512_bf16

BANDS, IMG, T, P = 12, 128, 3, 8  # 12 bands, 128² px, cubes of 3 bands × 8 × 8 px
FRAMES = BANDS // T  # PrithviMAE sees the 4 band groups as 4 frames of 3 channels
DECODER = {"decoder_embed_dim": 512, "decoder_depth": 4, "decoder_num_heads": 16}
MODES = {"fp32": None, "bf16": torch.bfloat16}
KERNEL_ROW = "S2MAE+kernel"  # S2MAE with our CPU attention kernel (bf16 only)
PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


# ---------------------------------------------------------------------------------------------
# models


def build_models(
    size: str, mask_ratio: float, compile_blocks: str = "none", kernel: bool = False
) -> dict[str, tuple[nn.Module, Callable]]:
    """Both MAEs (and S2MAE with our attention kernel), each with a ``loss_fn(x)`` taking the same
    ``[B, 12, H, W]`` batch."""
    from terratorch.models.backbones.prithvi_mae import PrithviMAE

    ours = build_mae(size, img_size=IMG, mask_ratio=mask_ratio, compile=compile_blocks != "none", **DECODER)
    prithvi = PrithviMAE(
        img_size=IMG,
        patch_size=(1, P, P),
        num_frames=FRAMES,
        in_chans=T,
        mask_ratio=mask_ratio,
        **VIT_SIZES[size],
        **DECODER,
    )

    if compile_blocks == "both":
        for block in [*prithvi.encoder.blocks, *prithvi.decoder.decoder_blocks]:
            block.compile(dynamic=False)

    def ours_loss(x: torch.Tensor) -> torch.Tensor:
        return ours(x).loss["loss"]

    def prithvi_loss(x: torch.Tensor) -> torch.Tensor:
        loss, _pred, _mask = prithvi(to_frames(x), mask_ratio=mask_ratio)  # returns (loss dict, pred, mask)
        return loss["loss"]

    models = {"S2MAE": (ours, ours_loss), "PrithviMAE": (prithvi, prithvi_loss)}
    if kernel:
        fast = build_mae(size, img_size=IMG, mask_ratio=mask_ratio, cpu_attention_kernel=True, **DECODER)
        fast.load_state_dict(ours.state_dict())
        models[KERNEL_ROW] = (fast, lambda x: fast(x).loss["loss"])
    return models


def build_extra(
    name: str, size: str, mask_ratio: float, batch_size: int, ssmae_batch_size: int, compile_blocks: str, kernel: bool
):
    """The other pretraining models: ``(model, loss_fn, input batch)``."""
    if name == "sigmae":
        model = build_mae(size, family="sigmae", img_size=IMG, patch_size=P, mask_ratio=mask_ratio,
                          compile=compile_blocks != "none", cpu_attention_kernel=kernel, **DECODER)  # fmt: skip
        return model, lambda x: model(x).loss["loss"], torch.randn(batch_size, BANDS, IMG, IMG).abs()
    bands = [f"{400 + 10 * i}nm" for i in range(49)] + ["DSM"]  # Houston-like: 48 HSI bands + LiDAR DSM
    # SS-MAE's sizes: 256 wide, depth 2, 8 heads
    model = build_ssmae(True, bands=bands, spectral_masking="redundant_spectra", cpu_attention_kernel=kernel)
    return model, lambda x: model(x).loss["loss"], torch.randn(ssmae_batch_size, len(bands), 7, 7)


def to_frames(x: torch.Tensor) -> torch.Tensor:
    """``[B, 12, H, W]`` → ``[B, 3, 4, H, W]``: band group g (bands 3g..3g+2) becomes frame g."""
    b, _, h, w = x.shape
    return x.reshape(b, FRAMES, T, h, w).transpose(1, 2)


def check_equal_tokens(models: dict[str, tuple[nn.Module, Callable]], device: torch.device) -> dict:
    """Assert both models see the same tokens; return the counts.

    Checked statically (token grid, values per token) and at run time: forward pre-hooks record
    the sequence length entering the first encoder block (visible tokens) and the first decoder
    block (all tokens). PrithviMAE adds one CLS token to both; S2MAE has none.
    """
    ours, prithvi = models["S2MAE"][0], models["PrithviMAE"][0]
    grid = ours.encoder.tokenizer.grid(IMG, IMG)
    pt, ph, pw = prithvi.encoder.patch_embed.patch_size
    counts = {
        "S2MAE": {"tokens": grid.num_tokens, "values_per_token": grid.pixels_per_token},
        "PrithviMAE": {"tokens": prithvi.encoder.patch_embed.num_patches, "values_per_token": pt * ph * pw * T},
    }
    first_blocks = {
        "S2MAE": (ours.encoder.blocks[0], ours.decoder.blocks[0], 0),
        "PrithviMAE": (prithvi.encoder.blocks[0], prithvi.decoder.decoder_blocks[0], 1),  # + CLS
    }
    x = torch.randn(2, BANDS, IMG, IMG, device=device)
    for name in first_blocks:
        model, loss_fn = models[name]
        seen = {}
        enc, dec, cls = first_blocks[name]
        hooks = [
            enc.register_forward_pre_hook(lambda m, a: seen.__setitem__("encoder", a[0].shape[1])),
            dec.register_forward_pre_hook(lambda m, a: seen.__setitem__("decoder", a[0].shape[1])),
        ]
        model.to(device)
        with torch.no_grad():
            loss = loss_fn(x)
        for h in hooks:
            h.remove()
        assert torch.isfinite(loss), (name, loss)
        counts[name]["visible_tokens_in_encoder"] = seen["encoder"] - cls
        counts[name]["tokens_in_decoder"] = seen["decoder"] - cls
    a, b = counts["S2MAE"], counts["PrithviMAE"]
    assert a == b and a["tokens"] == FRAMES * (IMG // P) ** 2 and a["values_per_token"] == T * P * P, counts
    return a


# ---------------------------------------------------------------------------------------------
# FLOPs


def _sdpa_cpu_flop(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """softmax(q kᵀ) v for ``[B, H, L, E]`` shapes: two batched matmuls."""
    b, h, lq, e = query
    lk, ev = key[-2], value[-1]
    return 2 * b * h * lq * lk * (e + ev)


def _sdpa_cpu_backward_flop(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    """Recompute q kᵀ, then the gradients wrt the scores, v, q and k: five batched matmuls."""
    b, h, lq, e = query
    lk, ev = key[-2], value[-1]
    return 2 * b * h * lq * lk * (3 * e + 2 * ev)


def _cpu_attention_flop_formulas() -> dict:
    aten = torch.ops.aten
    formulas = {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        formulas[aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu_flop
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        formulas[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _sdpa_cpu_backward_flop
    return formulas


def count_flops(model: nn.Module, loss_fn: Callable, x: torch.Tensor, device: torch.device, mode: str) -> float:
    """FLOPs of one forward + backward (the optimizer's elementwise work is not counted), with our
    attention kernel off: the same arithmetic, in ops torch's counter sees."""
    kernel_attention = [m for m in model.modules() if isinstance(m, KernelAttention) and m.use_cpu_kernel]
    for m in kernel_attention:
        m.use_cpu_kernel = False
    with FlopCounterMode(display=False, custom_mapping=_cpu_attention_flop_formulas()) as counter:
        with autocast(device, mode):
            loss = loss_fn(x)
        loss.backward()
    model.zero_grad(set_to_none=True)
    for m in kernel_attention:
        m.use_cpu_kernel = True
    return float(counter.get_total_flops())


# ---------------------------------------------------------------------------------------------
# timing


def autocast(device: torch.device, mode: str):
    if MODES[mode] is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=MODES[mode])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model, loss_fn, optimizer, x, device, mode) -> Callable[[], torch.Tensor]:
    def step() -> torch.Tensor:
        with autocast(device, mode):
            loss = loss_fn(x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step


def machine_busy_seconds() -> float | None:
    """CPU seconds spent busy by all processes on all cores since boot (Linux), else None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Window:
    """Wall time of a block, and the share of all cores other processes kept busy meanwhile."""

    def __enter__(self) -> Window:
        self.busy, self.cpu, self.start = machine_busy_seconds(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.start
        busy = machine_busy_seconds()
        if self.busy is None or busy is None:
            self.other_load = None
        else:
            others = (busy - self.busy) - (time.process_time() - self.cpu)
            self.other_load = max(0.0, others) / (self.wall * (os.cpu_count() or 1))


def interleaved_windows(
    steps: dict[str, Callable[[], torch.Tensor]], windows: int, steps_per_window: int, device: torch.device
) -> tuple[dict[str, list[float]], dict[str, list[float | None]], dict[str, torch.Tensor]]:
    """Time ``steps_per_window`` calls of each step per window, the runs' windows interleaved
    (A B, B A, A B, ...) so machine noise hits them alike.

    Returns, per name: seconds per step in each window, the other processes' load in each
    window (see :class:`Window`), and the step's last return value (the loss).
    """
    times = {name: [] for name in steps}
    loads = {name: [] for name in steps}
    last = {}
    names = list(steps)
    for w in range(windows):
        for name in names if w % 2 == 0 else names[::-1]:
            with Window() as window:
                for _ in range(steps_per_window):
                    last[name] = steps[name]()
                sync(device)
            times[name].append(window.wall / steps_per_window)
            loads[name].append(window.other_load)
    return times, loads, last


def matmul_peak(device: torch.device, dtype: torch.dtype, sizes: list[int], repeats: int = 5) -> float:
    """Best FLOP/s of ``torch.matmul`` of square ``n × n`` matrices over the given sizes."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        torch.matmul(a, b)  # warm-up
        sync(device)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b)
            sync(device)
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
        del a, b
    return best


def cuda_step_memory(step: Callable, device: torch.device) -> tuple[int, int]:
    """One more call of ``step`` on a CUDA ``device``: bytes allocated before it, and the peak during it."""
    torch.cuda.synchronize(device)
    held = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return held, torch.cuda.max_memory_allocated(device)


def step_memory(step: Callable, device: torch.device) -> dict[str, float | None]:
    """On CUDA, one more step: the peak memory allocated during it (GiB), and how much of that the step itself
    added above what was held before it (parameters, AdamW states, the batch: the other models' too)."""
    if device.type != "cuda":
        return {"peak_memory_gib": None, "step_memory_gib": None}
    held, peak = cuda_step_memory(step, device)
    return {"peak_memory_gib": peak / 2**30, "step_memory_gib": (peak - held) / 2**30}


def clean_median(times: list[float], loads: list[float | None], max_load: float) -> tuple[float, int]:
    """Median of the windows whose other-process load is at most ``max_load`` (all if fewer than half)."""
    clean = [t for t, load in zip(times, loads) if load is None or load <= max_load]
    if len(clean) * 2 < len(times):
        clean = times
    return statistics.median(clean), len(clean)


# ---------------------------------------------------------------------------------------------
# profiling


def profile_step(step: Callable, device: torch.device, row_limit: int) -> dict[str, float]:
    """Self time (ms) per op over one step; also prints torch.profiler's own table."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        sync(device)
    events = prof.key_averages()
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(events.table(sort_by=sort_by, row_limit=row_limit))
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return {e.key: getattr(e, attr) / 1e3 for e in events}


def print_profile_comparison(profiles: dict[str, dict[str, float]], row_limit: int) -> None:
    names = list(profiles)
    totals = {n: sum(profiles[n].values()) for n in names}
    ops = sorted(set().union(*profiles.values()), key=lambda k: -max(profiles[n].get(k, 0.0) for n in names))
    print(f"{'op (self time, ms)':<58}" + "".join(f"{n:>22}" for n in names))
    for op in ops[:row_limit]:
        cells = "".join(
            f"{profiles[n].get(op, 0.0):>13.1f} ({profiles[n].get(op, 0.0) / totals[n]:>5.1%})" for n in names
        )
        print(f"{op[:57]:<58}{cells}")
    print(f"{'total':<58}" + "".join(f"{totals[n]:>22.1f}" for n in names))


# ---------------------------------------------------------------------------------------------
# main


def describe_machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(VIT_SIZES), default="base", help="encoder size (default: base)")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per step (default: 8)")
    parser.add_argument("--mask-ratio", type=float, default=0.9, help="MAE mask ratio (default: 0.9)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per window (default: 2)")
    parser.add_argument("--windows", type=int, default=6, help="timed windows per model and mode (default: 6)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model and mode (default: 2)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES), help="default: fp32 bf16")
    parser.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda if available, else cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--matmul-sizes", type=int, nargs="+", default=None,
                        help="square matmul sizes for the peak (default: 2048 4096 on CPU, 8192 16384 on GPU, "
                             "where smaller ones take too little time to hide the launch)")
    parser.add_argument("--fp32-matmul-precision", choices=["highest", "high", "medium"], default="highest",
                        help="torch.set_float32_matmul_precision for the run (default: highest = true fp32; "
                             "importing TerraTorch sets medium)")
    parser.add_argument("--max-other-load", type=float, default=0.15,
                        help="leave out windows where other processes kept more than this share of all cores "
                             "busy (default: 0.15)")
    parser.add_argument("--compile", choices=["none", "ours", "both"], default="none",
                        help="torch.compile the transformer blocks of our models (ours) or of every model (both)")
    parser.add_argument("--no-fused-adamw", dest="fused_adamw", action="store_false",
                        help="AdamW's per-parameter loop instead of its fused kernel (default: fused, both models)")
    parser.add_argument("--extra", nargs="*", choices=["sigmae", "ssmae"], default=[],
                        help="also time these models (rows outside the S2MAE / PrithviMAE ratio)")
    parser.add_argument("--ssmae-batch-size", type=int, default=256, help="SS-MAE batch (7 × 7 patches; default: 256)")
    parser.add_argument("--cpu-attention-kernel", action=argparse.BooleanOptionalAction, default=None,
                        help="add the S2MAE+kernel row (our bf16 CPU attention; default: on CPUs with AVX512-BF16)")
    parser.add_argument("--profile", action="store_true", help="also profile one step per model in each mode")
    parser.add_argument("--profile-rows", type=int, default=15, help="rows of the profile tables (default: 15)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.matmul_sizes is None:
        args.matmul_sizes = [8192, 16384] if device.type == "cuda" else [2048, 4096]
    torch.manual_seed(args.seed)
    t_start = time.perf_counter()

    if args.cpu_attention_kernel is None:
        args.cpu_attention_kernel = device.type == "cpu" and "bf16" in args.modes and cpu_has_avx512_bf16()
    models = build_models(args.size, args.mask_ratio, args.compile, args.cpu_attention_kernel)
    precision_after_import = torch.get_float32_matmul_precision()  # TerraTorch's import may have changed it
    torch.set_float32_matmul_precision(args.fp32_matmul_precision)
    tokens = check_equal_tokens(models, device)
    x = torch.randn(args.batch_size, BANDS, IMG, IMG, device=device)
    inputs = dict.fromkeys(models, x)
    for name in args.extra:
        model, loss_fn, batch = build_extra(
            name, args.size, args.mask_ratio, args.batch_size, args.ssmae_batch_size, args.compile, args.cpu_attention_kernel
        )
        label = {"sigmae": "SIGMAE", "ssmae": "SS-MAE+MRS"}[name]
        models[label], inputs[label] = (model, loss_fn), batch.to(device)
    params = {name: sum(p.numel() for p in m.parameters()) for name, (m, _) in models.items()}

    machine = describe_machine(device)
    print(f"device {device} ({machine}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}")
    print(f"fp32 matmul precision: {args.fp32_matmul_precision} (after importing TerraTorch: {precision_after_import})")
    print(f"tokens (both models, asserted equal): {tokens}")
    print("parameters: " + ", ".join(f"{n} {p / 1e6:.1f} M" for n, p in params.items()))

    peaks_before = {m: matmul_peak(device, PEAK_DTYPES[m], args.matmul_sizes) for m in args.modes}
    print("matmul peak (before): " + ", ".join(f"{m} {v / 1e9:.0f} GFLOP/s" for m, v in peaks_before.items()),
          flush=True)

    results, profiles = [], {}
    for mode in args.modes:
        steps, flops = {}, {}
        for name, (model, loss_fn) in models.items():
            if name == KERNEL_ROW and mode != "bf16":
                continue  # the kernel is bf16-only: in fp32 this model is the S2MAE row
            model.to(device).train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, fused=args.fused_adamw or None)
            steps[name] = make_step(model, loss_fn, optimizer, inputs[name], device, mode)
            for _ in range(0 if args.compile == "none" else 1):  # compile outside the FLOP counter
                steps[name]()
            flops[name] = count_flops(model, loss_fn, inputs[name], device, mode)
            for _ in range(args.warmup):
                steps[name]()
            sync(device)
        times, loads, losses = interleaved_windows(steps, args.windows, args.steps, device)
        memory = {name: step_memory(steps[name], device) for name in steps}
        for name in steps:
            assert torch.isfinite(losses[name]), (name, mode, losses[name])
            step_time, n_clean = clean_median(times[name], loads[name], args.max_other_load)
            results.append({
                "model": name,
                "mode": mode,
                "step_s": step_time,
                "window_step_s": times[name],
                "window_other_load": loads[name],
                "windows_used": n_clean,
                "batch_size": len(inputs[name]),
                "samples_per_s": len(inputs[name]) / step_time,
                "gflop_per_sample": flops[name] / len(inputs[name]) / 1e9,
                "achieved_gflops": flops[name] / step_time / 1e9,
                **memory[name],
            })
            shown = ", ".join(
                f"{t:.2f}" + ("" if load is None else f" [{load:.0%}]") for t, load in zip(times[name], loads[name])
            )
            print(f"  {mode:<5}{name:<14}step {step_time:6.2f} s from {n_clean}/{args.windows} windows "
                  f"(s/step [other load]: {shown})", flush=True)
        if args.profile:
            profiles[mode] = {}
            for name in steps:
                print(f"\n--- profile: {name}, {mode} ---")
                profiles[mode][name] = profile_step(steps[name], device, args.profile_rows)
        del steps  # frees the optimizer states before the next mode
        for model, _ in models.values():
            model.zero_grad(set_to_none=True)

    peaks_after = {m: matmul_peak(device, PEAK_DTYPES[m], args.matmul_sizes) for m in args.modes}
    peaks = {m: max(peaks_before[m], peaks_after[m]) for m in args.modes}
    for r in results:
        r["fraction_of_peak"] = r["achieved_gflops"] * 1e9 / peaks[r["mode"]]

    print(f"\nViT-{args.size}, {BANDS} bands × {IMG}² px, {tokens['tokens']} tokens of "
          f"{tokens['values_per_token']} values, mask {args.mask_ratio} ({tokens['visible_tokens_in_encoder']} "
          f"visible), batch {args.batch_size}, {args.windows} windows × {args.steps} steps, "
          f"fp32 matmul precision {args.fp32_matmul_precision}, {'eager' if args.compile == 'none' else 'compiled blocks: ' + args.compile}, "
          f"AdamW {'fused' if args.fused_adamw else 'per-parameter loop'}")
    print("matmul peak: " + ", ".join(
        f"{m} {peaks[m] / 1e9:.0f} GFLOP/s (before {peaks_before[m] / 1e9:.0f}, after {peaks_after[m] / 1e9:.0f})"
        for m in args.modes))
    header = f"{'model':<14}{'mode':<6}{'batch':>6}{'samples/s':>11}{'s/step':>9}{'GFLOP/sample':>14}{'GFLOP/s':>10}{'of peak':>9}"
    on_gpu = device.type == "cuda"
    header += f"{'step GiB':>10}{'peak GiB':>10}" if on_gpu else ""
    print(header)
    print("-" * len(header))
    for r in results:
        memory = f"{r['step_memory_gib']:>10.1f}{r['peak_memory_gib']:>10.1f}" if on_gpu else ""
        print(f"{r['model']:<14}{r['mode']:<6}{r['batch_size']:>6}{r['samples_per_s']:>11.2f}{r['step_s']:>9.2f}"
              f"{r['gflop_per_sample']:>14.1f}{r['achieved_gflops']:>10.0f}{r['fraction_of_peak']:>9.1%}{memory}")
    if on_gpu:
        print("step GiB: memory the step added above what was held before it (the peak of its activations and "
              "gradients); peak GiB: the whole process's peak during that step, every model's weights and states included")
    ratios, paired = {}, {}
    for mode in args.modes:
        by = {r["model"]: r for r in results if r["mode"] == mode}
        theirs = by["PrithviMAE"]
        for name in ("S2MAE", KERNEL_ROW):
            if name not in by:
                continue
            ours, key = by[name], mode if name == "S2MAE" else f"{mode}, kernel"
            ratios[key] = ours["samples_per_s"] / theirs["samples_per_s"]
            pairs = list(zip(ours["window_step_s"], theirs["window_step_s"], ours["window_other_load"],
                             theirs["window_other_load"]))
            clean = [p / s for s, p, la, lb in pairs if max(la or 0.0, lb or 0.0) <= args.max_other_load]
            per_window = clean if len(clean) * 2 >= len(pairs) else [p / s for s, p, _, _ in pairs]
            paired[key] = statistics.median(per_window)
            print(f"{name} / PrithviMAE samples/s ({mode}): {ratios[key]:.2f}x   (median of {len(per_window)} "
                  f"paired window ratios {paired[key]:.2f}x, range {min(per_window):.2f}-{max(per_window):.2f})")

    for mode, per_model in profiles.items():
        print(f"\n=== self time per op, one step, {mode} ===")
        print_profile_comparison(per_model, args.profile_rows)
    elapsed = time.perf_counter() - t_start
    print(f"\ntotal time {elapsed:.0f} s")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "args": vars(args),
                "device": str(device),
                "machine": machine,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "fp32_matmul_precision_after_import": precision_after_import,
                "tokens": tokens,
                "parameters": params,
                "peaks_gflops": {m: peaks[m] / 1e9 for m in peaks},
                "peaks_gflops_before": {m: v / 1e9 for m, v in peaks_before.items()},
                "peaks_gflops_after": {m: v / 1e9 for m, v in peaks_after.items()},
                "results": results,
                "ratios": ratios,
                "ratios_median_paired_windows": paired,
                "profiles_self_ms": profiles,
                "elapsed_s": elapsed,
            }, f, indent=2)


if __name__ == "__main__":
    main()

"""Attention alone: our bf16 CPU kernel vs PyTorch's CPU flash kernel (SDPA), forward and backward.

Shapes are those of the S2MAE ViT-B pretraining step at batch 8: the decoder's 1024 tokens ×
16 heads of width 32, and the encoder's 102 visible tokens × 12 heads of width 64. Both
implementations take the same bf16 ``qkv`` projection output ``[B, N, 3·H·D]`` and return
``[B, N, H·D]`` (SDPA through timm's reshape/permute, as in the blocks). Times are the best of
``--repeats`` calls after one warm-up; GFLOP/s counts 2 matmuls forward and 5 backward (torch's
convention: the backward recomputes q·kᵀ), and the bf16 matmul peak is measured in the same run.

    python benchmarks/cpu_attention_speed.py
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from terratorch_specmae.layers.attention import cpu_attention

SHAPES = {"decoder 1024 tok × 16 × 32": (8, 1024, 16, 32), "encoder 102 tok × 12 × 64": (8, 102, 12, 64)}


def best_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def sdpa(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, width = qkv.shape
    q, k, v = qkv.view(b, n, 3, heads, width // 3 // heads).permute(2, 0, 3, 1, 4)
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, width // 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    a = torch.randn(4096, 4096, dtype=torch.bfloat16)
    peak = 2 * 4096**3 / best_time(lambda: a @ a, 5)
    print(f"threads {torch.get_num_threads()}, bf16 matmul peak {peak / 1e9:.0f} GFLOP/s")
    for label, (b, n, h, d) in SHAPES.items():
        torch.manual_seed(0)
        qkv = torch.randn(b, n, 3 * h * d, dtype=torch.bfloat16)
        grad = torch.randn(b, n, h * d, dtype=torch.bfloat16)
        fwd_flop = 4 * b * h * n * n * d
        row = {}
        for name, attention in (("ours", lambda t: cpu_attention(t, h, d**-0.5)), ("SDPA", lambda t: sdpa(t, h))):
            x = qkv.clone().requires_grad_()

            def forward():
                with torch.no_grad():
                    attention(x)

            def forward_backward():
                attention(x).backward(grad)

            fwd = best_time(forward, args.repeats)
            total = best_time(forward_backward, args.repeats)
            row[name] = total
            print(f"{label}  {name:<5} forward {fwd * 1e3:7.1f} ms ({fwd_flop / fwd / 1e9:4.0f} GFLOP/s)   "
                  f"forward+backward {total * 1e3:7.1f} ms ({3.5 * fwd_flop / total / 1e9:4.0f} GFLOP/s, "
                  f"{3.5 * fwd_flop / total / peak:.0%} of peak)")
        print(f"{label}  SDPA / ours, forward+backward: {row['SDPA'] / row['ours']:.2f}x")


if __name__ == "__main__":
    main()

"""Our bf16 CPU attention kernel (``cpu_attention.cpp``) as a drop-in for timm's ``Attention``.

PyTorch's CPU flash-attention kernel runs narrow heads (the MAE decoder's 16 heads of width 32)
at about a third of the bf16 matmul peak; ours runs them 1.85× faster, and ViT-B's encoder heads
3× faster, on a 2-core Zen 4 (``benchmarks/cpu_attention_speed.py``, ``benchmarks/RESULTS.md``).
It computes the same exact softmax attention (no mask, no dropout) with fp32 accumulation, and
is used only where it applies: on the CPU, with bf16 activations (bf16 autocast, or a bf16
model), head widths that are multiples of 32, no attention dropout while training, outside
``torch.compile``. Everywhere else the module is timm's ``Attention``, whose weights it shares
name for name.

The extension is compiled on first use with ``torch.utils.cpp_extension.load`` (ninja and a C++
compiler with OpenMP, about 40 s, cached under ``TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from timm.layers import Attention as TimmAttention
from torch import nn

SOURCE = Path(__file__).with_name("cpu_attention.cpp")
CFLAGS = ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16", "-fopenmp"]


def cpu_has_avx512_bf16() -> bool:
    """Whether this CPU runs AVX512-BF16 instructions (from ``/proc/cpuinfo``'s flags)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags and "avx512bw" in flags


@functools.cache
def extension():
    """The compiled kernel (built once per machine and torch version, then loaded from the cache)."""
    if not cpu_has_avx512_bf16():
        raise RuntimeError(
            "cpu_attention_kernel needs a CPU with AVX512-BF16 (Intel Cooper Lake / Sapphire Rapids or newer, "
            "AMD Zen 4 or newer); this CPU's flags lack avx512_bf16. Leave cpu_attention_kernel off."
        )
    from torch.utils.cpp_extension import load

    return load("specmae_cpu_attention", [str(SOURCE)], extra_cflags=CFLAGS, extra_ldflags=["-fopenmp"])


class CPUAttentionFunction(torch.autograd.Function):
    """``softmax(q·kᵀ·scale)·v`` from the qkv projection's output ``[B, N, 3·H·D]`` to ``[B, N, H·D]``."""

    @staticmethod
    def forward(ctx, qkv: torch.Tensor, num_heads: int, scale: float) -> torch.Tensor:
        qkv = qkv.contiguous()
        out, lse = extension().forward(qkv, num_heads, scale)
        ctx.save_for_backward(qkv, out, lse)
        ctx.num_heads, ctx.scale = num_heads, scale
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        qkv, out, lse = ctx.saved_tensors
        grad = extension().backward(qkv, out, grad_out.contiguous(), lse, ctx.num_heads, ctx.scale)
        return grad, None, None


def cpu_attention(qkv: torch.Tensor, num_heads: int, scale: float) -> torch.Tensor:
    """Self-attention of the packed ``qkv`` ``[B, N, 3·H·D]`` (bf16, CPU) with our kernel → ``[B, N, H·D]``."""
    return CPUAttentionFunction.apply(qkv, num_heads, scale)


class KernelAttention(TimmAttention):
    """timm's ``Attention`` that runs our CPU kernel where it applies (``use_cpu_kernel``)."""

    use_cpu_kernel: bool = False

    def kernel_applies(self, x: torch.Tensor, attn_mask, is_causal: bool) -> bool:
        return (
            self.use_cpu_kernel
            and x.device.type == "cpu"
            and attn_mask is None
            and not is_causal
            and self.head_dim % 32 == 0
            and self.gate is None
            and isinstance(self.q_norm, nn.Identity)
            and isinstance(self.k_norm, nn.Identity)
            and not (self.training and self.attn_drop.p > 0)
            and self.bf16_activations(x)
            and not torch.compiler.is_compiling()
        )

    def bf16_activations(self, x: torch.Tensor) -> bool:
        """Whether the qkv projection will produce bf16: under bf16 autocast, or a bf16 model fed bf16."""
        if torch.is_autocast_enabled("cpu"):
            return torch.get_autocast_dtype("cpu") == torch.bfloat16
        return x.dtype == torch.bfloat16 and self.qkv.weight.dtype == torch.bfloat16

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        if not self.kernel_applies(x, attn_mask, is_causal):
            return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)
        qkv = self.qkv(x)  # bf16 (see bf16_activations)
        x = cpu_attention(qkv, self.num_heads, self.scale)
        return self.proj_drop(self.proj(self.norm(x)))


def use_cpu_attention_kernel(blocks: nn.ModuleList, enabled: bool) -> bool:
    """Switch our kernel on or off in the blocks' attention; building it first, so a missing compiler
    or CPU feature is an error here rather than at the first training step."""
    if not isinstance(enabled, bool):
        raise TypeError(f"cpu_attention_kernel must be true or false, got {enabled!r}")
    if enabled:
        extension()
    for block in blocks:
        if not isinstance(block.attn, KernelAttention):
            raise TypeError(f"cpu_attention_kernel needs {KernelAttention.__module__}.KernelAttention blocks, got {type(block.attn)}")
        block.attn.use_cpu_kernel = enabled
    return enabled

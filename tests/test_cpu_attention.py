"""Our bf16 CPU attention kernel computes softmax(q·kᵀ/√d)·v and its gradients.

Tolerances: against true fp32 attention on the same bf16 inputs, the output and each gradient
(q, k, v) are within 1.5 % of their largest magnitude, and never more than 3× the error of
PyTorch's own bf16 flash kernel on the same inputs (both round to bf16 once per product).
Whole models: the same loss within 1 % and gradients with cosine similarity > 0.999 against
the same model with PyTorch's attention, in bf16 autocast; the fallback paths (fp32, head widths
that are not multiples of 32) are timm's code, bit for bit. Speed is the benchmark's business
(``benchmarks/pretrain_throughput.py``), not a test's.
"""

import pytest
import torch
import torch.nn.functional as F

from terratorch_specmae.backbones import build_mae, build_ssmae
from terratorch_specmae.layers.attention import KernelAttention, cpu_attention, cpu_has_avx512_bf16, extension

pytestmark = pytest.mark.skipif(not cpu_has_avx512_bf16(), reason="the kernel needs a CPU with AVX512-BF16")


def reference(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """fp32 attention of the same (bf16-valued) inputs, [B, N, 3·H·D] → [B, N, H·D].

    In true fp32: under matmul precision "medium" (what importing TerraTorch sets) a CPU with AMX runs
    these fp32 matmuls in bf16, and the reference itself is off by as much as the kernel under test
    (dq 0.0176 against 0.0135 in true fp32, measured on an Intel Xeon with AMX-BF16)."""
    b, n, width = qkv.shape
    q, k, v = qkv.float().view(b, n, 3, heads, width // 3 // heads).permute(2, 0, 3, 1, 4)
    assert torch.get_float32_matmul_precision() == "highest", "the fp32 reference must run in fp32 (tests/conftest.py)"
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(1, 2).reshape(b, n, width // 3)


def flash_bf16(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, width = qkv.shape
    q, k, v = qkv.view(b, n, 3, heads, width // 3 // heads).permute(2, 0, 3, 1, 4)
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, width // 3)


def relative_errors(qkv, heads, attention, grad_out, ref_out, ref_grad):
    x = qkv.detach().clone().requires_grad_()
    out = attention(x, heads)
    out.backward(grad_out)
    errors = [((out.float() - ref_out).abs().max() / ref_out.abs().max()).item()]
    for i in range(3):  # q, k, v
        got, want = x.grad.float().unflatten(-1, (3, -1))[..., i, :], ref_grad.unflatten(-1, (3, -1))[..., i, :]
        errors.append(((got - want).abs().max() / want.abs().max()).item())
    return errors


@pytest.mark.parametrize(
    ("batch", "tokens", "heads", "width"),
    [(2, 1024, 16, 32), (3, 102, 12, 64), (2, 37, 2, 32), (1, 5, 1, 32), (2, 70, 2, 96)],
    ids=["mae-decoder", "vit-b-encoder", "odd-tokens", "fewer-than-a-tile", "width-96"],
)
def test_kernel_matches_fp32_attention_and_its_gradients(batch, tokens, heads, width):
    torch.manual_seed(0)
    qkv = (torch.randn(batch, tokens, 3 * heads * width) * 2).bfloat16()
    grad_out = torch.randn(batch, tokens, heads * width).bfloat16()
    x = qkv.float().requires_grad_()
    ref_out = reference(x, heads)
    ref_out.backward(grad_out.float())
    ours = relative_errors(qkv, heads, lambda t, h: cpu_attention(t, h, (width) ** -0.5), grad_out, ref_out, x.grad)
    flash = relative_errors(qkv, heads, flash_bf16, grad_out, ref_out, x.grad)
    for name, mine, theirs in zip(["out", "dq", "dk", "dv"], ours, flash):
        assert mine < 0.015, (name, mine)
        assert mine < 3 * max(theirs, 1e-3), (name, mine, theirs)


def test_kernel_is_deterministic():
    qkv = torch.randn(4, 200, 3 * 4 * 32).bfloat16().requires_grad_()
    runs = []
    for _ in range(2):
        qkv.grad = None
        out = cpu_attention(qkv, 4, 32**-0.5)
        out.sum().backward()
        runs.append((out.detach(), qkv.grad.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_kernel_rejects_what_it_does_not_compute():
    ext = extension()
    with pytest.raises(RuntimeError, match="head width must be a multiple of 32, got 16"):
        ext.forward(torch.zeros(1, 4, 3 * 2 * 16, dtype=torch.bfloat16), 2, 0.25)
    with pytest.raises(RuntimeError, match="qkv must be bf16"):
        ext.forward(torch.zeros(1, 4, 3 * 32), 1, 0.25)
    with pytest.raises(RuntimeError, match="is not 3 × 5 heads"):
        ext.forward(torch.zeros(1, 4, 96, dtype=torch.bfloat16), 5, 0.25)


MAE_ARGS = {"bands": "landsat7", "img_size": 32, "decoder_embed_dim": 64, "decoder_depth": 2, "decoder_num_heads": 2}


def mae(**kwargs):
    torch.manual_seed(0)
    return build_mae("tiny", **{**MAE_ARGS, **kwargs})


def loss_and_grads(model, x, bf16: bool):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(x, generator=torch.Generator().manual_seed(1)).loss["loss"]
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_mae_with_the_kernel_trains_like_the_mae_without_it():
    x = torch.randn(4, 6, 32, 32)
    plain, fast = mae(), mae(cpu_attention_kernel=True)
    assert fast.state_dict().keys() == plain.state_dict().keys()  # the same weights, name for name
    blocks = [*fast.encoder.blocks, *fast.decoder.blocks]
    assert all(isinstance(b.attn, KernelAttention) and b.attn.use_cpu_kernel for b in blocks)  # decoder follows the encoder
    calls = []
    for b in blocks:
        b.attn.register_forward_hook(lambda m, a, o: calls.append(m.kernel_applies(a[0], None, False)))
    loss_ref, grads_ref = loss_and_grads(plain, x, bf16=True)
    loss_fast, grads_fast = loss_and_grads(fast, x, bf16=True)
    assert calls and all(calls)  # ViT-tiny heads of 64, decoder heads of 32: every block ran the kernel
    assert abs(loss_fast.item() / loss_ref.item() - 1) < 0.01
    for name, grad in grads_ref.items():
        cosine = F.cosine_similarity(grad.flatten().double(), grads_fast[name].flatten().double(), dim=0)
        assert cosine > 0.999, (name, cosine.item())


def test_fallback_paths_are_timms_bit_for_bit():
    x = torch.randn(2, 6, 32, 32)
    # fp32: the kernel does not apply, the same code runs
    plain, fast = mae(), mae(cpu_attention_kernel=True)
    loss_a, grads_a = loss_and_grads(plain, x, bf16=False)
    loss_b, grads_b = loss_and_grads(fast, x, bf16=False)
    assert torch.equal(loss_a, loss_b) and all(torch.equal(grads_a[n], grads_b[n]) for n in grads_a)
    # bf16 with heads of width 16 in the decoder: those blocks fall back, the encoder's use the kernel
    narrow = mae(cpu_attention_kernel=True, decoder_num_heads=4)
    assert not narrow.encoder.blocks[0].attn.kernel_applies(torch.zeros(1, 4, 192), None, False)  # no autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not narrow.decoder.blocks[0].attn.kernel_applies(torch.zeros(1, 4, 64), None, False)
        assert narrow.encoder.blocks[0].attn.kernel_applies(torch.zeros(1, 4, 192), None, False)
        assert not narrow.encoder.blocks[0].attn.kernel_applies(torch.zeros(1, 4, 192), torch.ones(4, 4), False)
    narrow.to(torch.bfloat16)  # a bf16 model fed bf16 runs the kernel without autocast
    assert narrow.encoder.blocks[0].attn.kernel_applies(torch.zeros(1, 4, 192, dtype=torch.bfloat16), None, False)
    assert not narrow.encoder.blocks[0].attn.kernel_applies(torch.zeros(1, 4, 192), None, False)


def test_kernel_with_activation_checkpointing_gives_the_same_gradients():
    x = torch.randn(2, 6, 32, 32)
    loss_a, grads_a = loss_and_grads(mae(cpu_attention_kernel=True), x, bf16=True)
    loss_b, grads_b = loss_and_grads(mae(cpu_attention_kernel=True, grad_checkpointing=True), x, bf16=True)
    assert torch.equal(loss_a, loss_b)
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], atol=1e-6), name


def test_ssmae_takes_the_run_options():
    bands = [f"{400 + 10 * i}nm" for i in range(12)] + ["DSM"]
    x = torch.randn(8, len(bands), 7, 7)

    def run(**options):
        torch.manual_seed(0)
        model = build_ssmae(True, bands=bands, embed_dim=64, num_heads=2, decoder_embed_dim=64, decoder_num_heads=2, **options)
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(x, generator=torch.Generator().manual_seed(1)).loss["loss"]
        loss.backward()
        return model, loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model, loss, grads = run(cpu_attention_kernel=True, grad_checkpointing=True)
    assert model.spatial.encoder.grad_checkpointing and model.spectral.decoder.grad_checkpointing
    assert all(b.attn.use_cpu_kernel for b in model.spectral.decoder.blocks)
    _, loss_ckpt_off, grads_ckpt_off = run(cpu_attention_kernel=True)
    assert torch.equal(loss, loss_ckpt_off)
    assert all(torch.allclose(g, grads_ckpt_off[n], atol=1e-6) for n, g in grads.items())
    assert "cpu_attention_kernel" not in model.hub_config()  # how to run it, not what it is

"""The fast paths compute what the reference fp32 path computes, within stated tolerances.

* SDPA (PyTorch's fused attention) vs timm's explicit softmax(q·kᵀ)·v: 1e-5 (true fp32);
* bf16 autocast vs fp32: loss within 2 % relative, reconstruction within 5 % of its spread;
* activation checkpointing: the same loss and gradients (1e-6);
* torch.compile (inductor) vs eager: loss and gradients within 1e-4 relative; blocks compile once
  and are not recompiled step after step (the number of visible tokens is fixed).
"""

import pytest
import torch
from torch._dynamo.utils import counters

from terratorch_specmae.backbones import build_mae
from terratorch_specmae.tasks import SpectralMAETask

ARGS = {"bands": "landsat7", "img_size": 32, "decoder_embed_dim": 64, "decoder_depth": 2, "decoder_num_heads": 4}


def mae(**kwargs):
    torch.manual_seed(0)
    return build_mae("tiny", **{**ARGS, **kwargs})


def loss_and_grads(model, x):
    model.zero_grad(set_to_none=True)
    out = model(x, generator=torch.Generator().manual_seed(1))
    out.loss["loss"].backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


def test_sdpa_matches_explicit_attention(true_fp32):
    model, x = mae(), torch.randn(2, 6, 32, 32)
    blocks = [*model.encoder.blocks, *model.decoder.blocks]
    assert all(b.attn.fused_attn for b in blocks)  # timm routes through F.scaled_dot_product_attention
    fused, fused_grads = loss_and_grads(model, x)
    for b in blocks:
        b.attn.fused_attn = False
    explicit, explicit_grads = loss_and_grads(model, x)
    assert torch.allclose(fused.loss["loss"], explicit.loss["loss"], rtol=1e-5)
    assert torch.allclose(fused.pred, explicit.pred, atol=1e-5)
    for name, grad in fused_grads.items():
        assert torch.allclose(grad, explicit_grads[name], atol=1e-5, rtol=1e-4), name


def test_bf16_autocast_matches_fp32(true_fp32):
    model, x = mae(), torch.randn(4, 6, 32, 32)
    reference, _ = loss_and_grads(model, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = model(x, generator=torch.Generator().manual_seed(1))
    assert fast.loss["loss"].dtype == torch.float32  # the loss is reduced in fp32
    assert abs(fast.loss["loss"].item() / reference.loss["loss"].item() - 1) < 0.02
    spread = reference.pred.std()
    assert (fast.pred.float() - reference.pred).abs().mean() < 0.05 * spread


def test_activation_checkpointing_gives_the_same_gradients(true_fp32):
    x = torch.randn(2, 6, 32, 32)
    plain, plain_grads = loss_and_grads(mae(), x)
    ckpt_model = mae(grad_checkpointing=True)
    assert ckpt_model.decoder.grad_checkpointing
    checkpointed, ckpt_grads = loss_and_grads(ckpt_model, x)
    assert torch.allclose(plain.loss["loss"], checkpointed.loss["loss"], rtol=1e-6)
    assert plain_grads.keys() == ckpt_grads.keys()
    for name, grad in plain_grads.items():
        assert torch.allclose(grad, ckpt_grads[name], atol=1e-6), name


def test_compiled_blocks_compile_once_not_every_step():
    torch._dynamo.reset()
    counters.clear()
    model = mae(compile={"backend": "eager"})
    x = torch.randn(2, 6, 32, 32)
    loss_and_grads(model, x)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1
    for seed in range(3):  # new masks every step: other tokens, same counts
        model(torch.randn(2, 6, 32, 32), generator=torch.Generator().manual_seed(seed)).loss["loss"].backward()
    assert counters["stats"]["unique_graphs"] == graphs
    model(torch.randn(2, 6, 48, 48)).loss["loss"].backward()  # another image size: compiled once more
    assert counters["stats"]["unique_graphs"] > graphs
    torch._dynamo.reset()


@pytest.mark.slow
def test_inductor_compiled_model_matches_eager(true_fp32):
    torch._dynamo.reset()
    x = torch.randn(2, 6, 32, 32)
    eager, eager_grads = loss_and_grads(mae(depth=2), x)
    compiled, compiled_grads = loss_and_grads(mae(depth=2, compile=True), x)
    assert torch.allclose(eager.loss["loss"], compiled.loss["loss"], rtol=1e-4)
    for name, grad in eager_grads.items():
        assert torch.allclose(grad, compiled_grads[name], atol=1e-5, rtol=1e-3), name
    torch._dynamo.reset()


def test_pretraining_task_uses_fused_adamw():
    task = SpectralMAETask(model_args={"model": "s2mae_vit_tiny_mae", **ARGS}, lr_schedule="constant")
    optimizer = task.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"] is True

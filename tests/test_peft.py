"""LoRA through TerraTorch's ``peft_config`` on our backbones (HF PEFT)."""

from __future__ import annotations

import copy

import peft  # noqa: F401  (the `test` extra installs it; a missing PEFT must fail, not skip)
import pytest
import torch
from terratorch.models import EncoderDecoderFactory
from terratorch.registry import BACKBONE_REGISTRY

NECKS = [
    {"name": "SelectIndices", "indices": [2, 5, 8, 11]},
    {"name": "ReshapeTokensToImage", "remove_cls_token": False},
    {"name": "LearnedInterpolateToPyramidal"},
]
LORA = {
    "method": "LORA",
    "replace_qkv": "qkv",
    "peft_config_kwargs": {"target_modules": ["q_linear", "v_linear"], "r": 8, "lora_alpha": 16},
}


@pytest.mark.parametrize("name", ["s2mae_vit_tiny", "sigmae_vit_tiny"])
def test_lora_trains_only_adapters_and_starts_as_the_pretrained_encoder(name, true_fp32):
    backbone = BACKBONE_REGISTRY.build(name, bands="landsat7", img_size=64, patch_size=8)
    original = copy.deepcopy(backbone).eval()
    model = EncoderDecoderFactory().build_model(
        task="segmentation", backbone=backbone, necks=NECKS, decoder="UperNetDecoder", decoder_channels=32,
        num_classes=3, peft_config=LORA,
    )  # fmt: skip
    trainable = {n: p for n, p in model.encoder.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    # 12 blocks × (q, v) × (A: r × D + B: D × r) with D = 192, r = 8
    assert sum(p.numel() for p in trainable.values()) == 12 * 2 * 2 * 8 * 192
    x = torch.randn(2, 6, 64, 64)
    with torch.no_grad():  # LoRA's B starts at zero: the adapted encoder is the original one
        for got, want in zip(model.encoder.eval()(x), original(x)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)

    frozen = {n: p.detach().clone() for n, p in model.encoder.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x).output, torch.randint(0, 3, (2, 64, 64)))
    loss.backward()
    optimizer.step()
    for n, p in model.encoder.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, frozen[n]), n  # the pretrained weights do not move
    lora_b = [p for n, p in model.encoder.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in lora_b)  # the adapters do

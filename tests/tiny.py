"""Tiny models for tests: the architecture arguments every test file used to repeat, in one place.

``TINY_ENCODER`` is a 6-band (Landsat 7) S2MAE-shaped ViT small enough for a CPU test; tests
override what their point needs (``tiny_encoder(depth=4, fold="none")``). The ``tiny_encoder`` /
``tiny_mae`` fixtures of ``conftest.py`` hand these builders to a test.
"""

from __future__ import annotations

import torch

from terratorch_specmae.backbones import build_mae, build_ssmae
from terratorch_specmae.models import SSMAE, SpectralMAE, SpectralViT

TINY_ENCODER = {"bands": "landsat7", "img_size": 32, "embed_dim": 16, "depth": 1, "num_heads": 2}
TINY_DECODER = {"decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2}
TINY_SSMAE = {"bands": "landsat7", "window_size": 5, "embed_dim": 32, "depth": 1, "num_heads": 2, **TINY_DECODER}
# TerraTorch's EncoderDecoderFactory around the tiny encoder: the config's neck chain (the one block's output
# four times for the pyramid) and a narrow UPerNet
TINY_SEGMENTATION = {
    "backbone": "s2mae_vit_tiny", "backbone_pretrained": False,
    **{f"backbone_{k}": v for k, v in TINY_ENCODER.items()},
    "necks": [{"name": "SelectIndices", "indices": [0, 0, 0, 0]},
              {"name": "ReshapeTokensToImage", "remove_cls_token": False},
              {"name": "LearnedInterpolateToPyramidal"}],
    "decoder": "UperNetDecoder", "decoder_channels": 8, "num_classes": 3,
}  # fmt: skip


def tiny_encoder(**overrides) -> SpectralViT:
    """A tiny :class:`SpectralViT` (architecture only; weights as initialised)."""
    return SpectralViT(**{**TINY_ENCODER, **overrides})


def tiny_mae(**overrides) -> SpectralMAE:
    """A tiny S2MAE through the registered builder (encoder and decoder options mixed, as in YAML;
    ``ckpt_path`` and run switches are taken as the builder takes them)."""
    return build_mae("tiny", "s2mae", **{**TINY_ENCODER, **TINY_DECODER, **overrides})


def tiny_ssmae(**overrides) -> SSMAE:
    return build_ssmae(True, **{**TINY_SSMAE, **overrides})


def tiny_segmentation_args(**overrides) -> dict:
    """``model_args`` of a tiny segmentation model (EncoderDecoderFactory); ``overrides`` replace or add keys."""
    return {**TINY_SEGMENTATION, **overrides}


def randomised(model: torch.nn.Module) -> torch.nn.Module:
    """Weights that differ from any fresh initialisation (so a tensor left unloaded shows)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    return model

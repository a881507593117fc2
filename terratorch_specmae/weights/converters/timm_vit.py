"""timm / MAE ViT encoders (the SSL4EO-S12 MAE and FG-MAE Sentinel-2 ViTs) → our 2D-patch ``SpectralViT``.

SIGMAE's encoder is a plain ViT over ``16×16`` patches of all bands with no class token: our
``sigmae_vit_*`` (``spectral_patch_size`` = all bands). The SSL4EO-S12 encoders
(``B13_vit{s,b,l}16_{mae,fgmae}_ep99_enc.pth``, loaded by TorchGeo into timm's
``vit_*_patch16_224`` with ``in_chans=13``) are MAE encoders: timm's key names, fused ``qkv``,
LayerNorm eps 1e-6, a class token and a position table with one row for it.

=================================================  ==========================================
timm / MAE                                         ours (``SpectralViT``)
=================================================  ==========================================
``patch_embed.proj.weight`` ``[D, C, p, p]``        ``tokenizer.proj.weight`` ``[D, 1, C, p, p]``
``patch_embed.proj.bias``                          ``tokenizer.proj.bias``
``pos_embed`` ``[1, 1 + h·w, D]``, rows 1 …          ``pos_embed.spatial`` ``[1, h·w, D]``
(none: one spectral group)                          ``pos_embed.spectral`` ``[1, 1, D]``, zeros
``blocks.N.*``, ``norm.*``                          the same names
``cls_token``, ``pos_embed`` row 0                  dropped (named in the load report)
``head.*`` (a classifier, if any)                   dropped (named in the load report)
=================================================  ==========================================

**The class token is dropped.** Our encoders have none (S2MAE, SIGMAE and SpectralGPT use
none), so the converted encoder computes what timm's ViT computes when built without a class
token (``class_token=False``) from the same tensors — tested to float32 rounding — and not what
the encoder computed in MAE pretraining, where every patch token also attended to the class
token. The class token's position row holds zeros in MAE's fixed sin-cos table, so nothing of
the positions is lost; what changes is attention, which fine-tuning adapts to.
``benchmarks/pretrained_catalogue.py`` measures how far the features move on a real scene.

The position table (a ``14×14`` grid for 224 px and patch 16) is resampled bicubically to the
model's image size when they differ (:mod:`terratorch_specmae.weights.adaptation`, timm's
``resample_abs_pos_embed``). A spectral row of zeros adds nothing, so the sum of the two tables
is exactly the file's position table. Any other key (a decoder, ``fc_norm``) is an error.
"""

from __future__ import annotations

import math
import re

import torch

from terratorch_specmae.weights.adaptation import SourceLayout

_BLOCK = re.compile(r"^blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)$")
_KEPT = {"patch_embed.proj.weight", "patch_embed.proj.bias", "pos_embed", "norm.weight", "norm.bias"}


def is_timm_vit_state(state) -> bool:
    """Whether a state dict holds a timm / MAE ViT encoder (4-D patch kernel, one joint position table, fused qkv)."""
    kernel = state.get("patch_embed.proj.weight")
    return (
        isinstance(kernel, torch.Tensor)
        and kernel.ndim == 4
        and "pos_embed" in state
        and "blocks.0.attn.qkv.weight" in state
    )


def _prefix_tokens(state) -> int:
    return 1 if "cls_token" in state else 0


def timm_vit_dropped(state) -> list[str]:
    """What of a timm ViT file the converted encoder does not use, in words (for the load report)."""
    dropped = []
    if "cls_token" in state:
        dropped += ["cls_token (our encoders have no class token)", "pos_embed row 0 (the class token's position)"]
    dropped += [f"{key} (a classification head, not part of the encoder)" for key in state if key.startswith("head.")]
    return dropped


def timm_vit_state_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm ViT key names → ours; class token and classifier head dropped, anything else unknown is an error."""
    unknown = [
        k for k in state if k not in _KEPT and k != "cls_token" and not k.startswith("head.") and not _BLOCK.match(k)
    ]
    if unknown:
        raise ValueError(
            f"Unknown keys in a timm ViT checkpoint (not converted, nothing dropped silently): {unknown[:10]}. "
            "Expected an encoder's keys (patch_embed, cls_token, pos_embed, blocks.N, norm); a full MAE checkpoint's "
            "decoder and a fine-tuned model's fc_norm are not converted."
        )
    if "norm.weight" not in state:
        raise ValueError("The timm ViT checkpoint has no final norm (norm.weight): expected an encoder with its norm.")
    kernel = state["patch_embed.proj.weight"]
    pos = state["pos_embed"]
    prefix = _prefix_tokens(state)
    cells = pos.shape[1] - prefix
    if pos.ndim != 3 or math.isqrt(cells) ** 2 != cells:
        raise ValueError(
            f"pos_embed of shape {tuple(pos.shape)} is not a square grid of patches plus {prefix} class token row(s)."
        )
    ours = {
        "tokenizer.proj.weight": kernel.unsqueeze(1).contiguous(),
        "tokenizer.proj.bias": state["patch_embed.proj.bias"],
        "pos_embed.spatial": pos[:, prefix:].contiguous(),
        "pos_embed.spectral": torch.zeros(1, 1, pos.shape[-1], dtype=pos.dtype),
        "norm.weight": state["norm.weight"],
        "norm.bias": state["norm.bias"],
    }
    ours.update({k: v for k, v in state.items() if _BLOCK.match(k)})
    return ours


def timm_vit_source_layout(state: dict[str, torch.Tensor]) -> SourceLayout:
    """The image size of a converted timm ViT state (grid side × patch size); its bands are not in the file."""
    p = state["tokenizer.proj.weight"].shape[-1]
    side = math.isqrt(state["pos_embed.spatial"].shape[1])
    return SourceLayout(None, (side * p, side * p))

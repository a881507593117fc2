"""Files laid out exactly as the catalogue's public weights are, for tests that cannot download the real ones.

* :func:`spectralgpt_file` — SpectralGPT's pretraining checkpoint as its training script saves it:
  a torch pickle ``{"model", "optimizer", "epoch", "scaler", "args"}`` whose ``model`` holds
  SpectralGPT's key names and the exact ViT-B shapes (``patch_embed.proj`` ``[768, 1, 3, 8, 8]``,
  separate q/k/v, spatial table of 12×12 or 16×16 cells, 4 groups, a 512-wide 4-block decoder).
* :func:`ssl4eo_file` — an SSL4EO-S12 ``_enc.pth``: a plain state dict with timm's
  ``vit_*_patch16_224`` (``in_chans=13``) key names and shapes, read off timm's own model on the
  meta device (no head; a class token; MAE's position table, whose class-token row is zeros).

The values are random. To keep the files small while the shapes are exact, every tensor is a view
into one shared random storage (``torch.save`` writes a shared storage once): a ViT-L file is
~20 MB instead of 1.2 GB. What reads them sees the published names, shapes, dtypes and pickle
layout; the conversion code then copies each tensor out, as it must for the real files.
"""

from __future__ import annotations

import argparse
import functools
import io

import timm
import torch

SPECTRALGPT_DECODER = {"width": 512, "depth": 4}


def shared_views(shapes: dict[str, tuple[int, ...]], seed: int = 0, scale: float = 0.05) -> dict[str, torch.Tensor]:
    """A tensor of each shape, all views into one random storage (at varied offsets)."""
    largest = max(torch.Size(s).numel() for s in shapes.values())
    base = torch.randn(largest + 4096, generator=torch.Generator().manual_seed(seed)) * scale
    out = {}
    for i, (name, shape) in enumerate(shapes.items()):
        offset = (i * 131) % 4096
        out[name] = base[offset : offset + torch.Size(shape).numel()].view(shape)
    return out


def spectralgpt_shapes(side: int, width: int = 768, depth: int = 12, t: int = 3, p: int = 8, groups: int = 4,
                       decoder_width: int = SPECTRALGPT_DECODER["width"], decoder_depth: int = SPECTRALGPT_DECODER["depth"],
                       mlp: int = 4) -> dict[str, tuple[int, ...]]:  # fmt: skip
    """SpectralGPT's pretraining state: its key names and their shapes (defaults: ViT-B, a 512-wide 4-block decoder)."""
    d, dd = width, decoder_width
    shapes = {
        "patch_embed.proj.weight": (d, 1, t, p, p), "patch_embed.proj.bias": (d,),
        "pos_embed_spatial": (1, side * side, d), "pos_embed_temporal": (1, groups, d),
    }  # fmt: skip
    for prefix, n, w in (("blocks", depth, d), ("decoder_blocks", decoder_depth, dd)):
        for i in range(n):
            b = f"{prefix}.{i}."
            for name, shape in (("norm1", (w,)), ("attn.q", (w, w)), ("attn.k", (w, w)), ("attn.v", (w, w)),
                                ("attn.proj", (w, w)), ("norm2", (w,)), ("mlp.fc1", (mlp * w, w)), ("mlp.fc2", (w, mlp * w))):  # fmt: skip
                shapes[b + name + ".weight"] = shape
                shapes[b + name + ".bias"] = (shape[0],)
    shapes.update({
        "norm.weight": (d,), "norm.bias": (d,),
        "decoder_embed.weight": (dd, d), "decoder_embed.bias": (dd,), "mask_token": (1, 1, dd),
        "decoder_pos_embed_spatial": (1, side * side, dd), "decoder_pos_embed_temporal": (1, groups, dd),
        "decoder_norm.weight": (dd,), "decoder_norm.bias": (dd,),
        "decoder_pred.weight": (t * p * p, dd), "decoder_pred.bias": (t * p * p,),
    })  # fmt: skip
    return shapes


@functools.lru_cache(maxsize=4)
def spectralgpt_bytes(img_size: int = 128, seed: int = 0) -> bytes:
    """SpectralGPT(+).pth's layout: ``img_size`` 96 (SpectralGPT) or 128 (SpectralGPT+)."""
    model = shared_views(spectralgpt_shapes(img_size // 8), seed)
    moments = shared_views({k: tuple(v.shape) for k, v in model.items()}, seed + 1, scale=1e-3)
    optimizer = {
        "state": {i: {"step": torch.tensor(200.0), "exp_avg": m, "exp_avg_sq": m.abs()} for i, m in enumerate(moments.values())},
        "param_groups": [{"lr": 0.0, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.05, "amsgrad": False,
                          "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                          "fused": None, "params": list(range(len(model)))}],
    }  # fmt: skip
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 0}
    args = argparse.Namespace(model=f"mae_vit_base_patch8_{img_size}", input_size=img_size, mask_ratio=0.9, epochs=200,
                              batch_size=16, blr=2e-4, weight_decay=0.05, model_type="tensor")  # fmt: skip
    buffer = io.BytesIO()
    torch.save({"model": model, "optimizer": optimizer, "epoch": 199, "scaler": scaler, "args": args}, buffer)
    return buffer.getvalue()


def timm_vit_shapes(size: str, in_chans: int = 13) -> dict[str, tuple[int, ...]]:
    """Key names and shapes of timm's ``vit_<size>_patch16_224`` as TorchGeo builds it for SSL4EO-S12 (no head)."""
    with torch.device("meta"):
        model = timm.create_model(f"vit_{size}_patch16_224", in_chans=in_chans, num_classes=0)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def ssl4eo_state(size: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """An SSL4EO-S12 ``_enc.pth`` state dict: timm names and shapes, MAE's zero class-token position row."""
    state = shared_views(timm_vit_shapes(size), seed)
    pos = state["pos_embed"]
    state["pos_embed"] = torch.cat([torch.zeros_like(pos[:, :1]), pos[:, 1:]], dim=1)
    return state


@functools.lru_cache(maxsize=8)
def ssl4eo_bytes(size: str, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    torch.save(ssl4eo_state(size, seed), buffer)
    return buffer.getvalue()


def timm_reference(state: dict[str, torch.Tensor], size: str) -> torch.nn.Module:
    """timm's own ViT built without a class token (``class_token=False``, no pooling), loaded strictly with the
    file's tensors less the class token and its position row: what our converted encoder must compute."""
    with torch.device("meta"):
        model = timm.create_model(f"vit_{size}_patch16_224", in_chans=13, num_classes=0, class_token=False, global_pool="")
    tensors = {k: v.clone() for k, v in state.items() if k != "cls_token"}
    tensors["pos_embed"] = tensors["pos_embed"][:, 1:].contiguous()
    model.load_state_dict(tensors, strict=True, assign=True)
    return model.eval()

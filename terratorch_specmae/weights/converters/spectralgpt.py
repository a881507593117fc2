"""SpectralGPT / SpectralGPT+ pretraining checkpoints → our S2MAE models.

S2MAE has no released weights. Its closest public relative is SpectralGPT (Hong et al., TPAMI
2024, the same lab): the same ``3×8×8`` cube tokens over 12 Sentinel-2 bands, separate learnable
spatial and spectral position tables, no class token, tokens in (group, row, col) order. Its
pretraining checkpoints (``SpectralGPT.pth``: fMoW-Sentinel, 96 px; ``SpectralGPT+.pth``:
continued on BigEarthNet, 128 px; Zenodo record 8412455) convert one to one into
``s2mae_vit_base`` and, decoder included, into ``s2mae_vit_base_mae`` with
``decoder_pos_embed: learnable``.

The file is a torch pickle ``{"model": state_dict, "optimizer", "epoch", "scaler", "args"}``;
it is read with ``weights_only=True`` (``argparse.Namespace``, which holds ``args``, is the one
class allowed besides tensors). Keys map as follows (``N`` = block index):

=========================================================  ==========================================
SpectralGPT                                                ours (``SpectralViT`` / ``SpectralMAE``)
=========================================================  ==========================================
``patch_embed.proj.{weight,bias}`` ``[D,1,3,8,8]``          ``tokenizer.proj.{weight,bias}``
``pos_embed_spatial`` ``[1,h·w,D]``                         ``pos_embed.spatial``
``pos_embed_temporal`` ``[1,4,D]`` (one row per group)      ``pos_embed.spectral``
``blocks.N.attn.{q,k,v}.{weight,bias}``                     ``blocks.N.attn.qkv.{weight,bias}`` (q, k, v stacked)
``blocks.N.{norm1,norm2,attn.proj,mlp.fc1,mlp.fc2}.*``      the same names
``norm.*``                                                  ``norm.*``
``decoder_embed.*``                                         ``decoder.embed.*``
``mask_token``                                              ``decoder.mask_token``
``decoder_pos_embed_spatial`` / ``_temporal``               ``decoder.pos_embed.spatial`` / ``.spectral``
``decoder_blocks.N.*``                                      ``decoder.blocks.N.*`` (q, k, v stacked)
``decoder_norm.*``, ``decoder_pred.*`` (``3·8·8`` outputs)  ``decoder.norm.*``, ``decoder.pred.*``
=========================================================  ==========================================

Any other key is an error (nothing is dropped silently). Not carried over: SpectralGPT's
second loss term (MSE of the group-summed reconstruction); the converted MAE trains with ours.
Its LayerNorms use eps 1e-6, as ours. Bands: B01–B08, B8A, B09, B11, B12 (our
``sentinel2_l2a`` preset), each image min–max scaled per band in pretraining.
"""

from __future__ import annotations

import argparse
import math
import pickle
import re
from pathlib import Path

import torch

from terratorch_specmae.bands import SENSOR_PRESETS
from terratorch_specmae.models.encoder import SpectralViT
from terratorch_specmae.models.mae import SpectralMAE
from terratorch_specmae.variants import heads_for_width
from terratorch_specmae.weights.adaptation import SourceLayout
from terratorch_specmae.weights.catalogue import PretrainedCfg

SPECTRALGPT_BANDS = SENSOR_PRESETS["sentinel2_l2a"]
_QKV = re.compile(r"^(decoder_blocks|blocks)\.(\d+)\.attn\.([qkv])\.(weight|bias)$")
_RENAMES = {
    "patch_embed.proj.": "encoder.tokenizer.proj.",
    "pos_embed_spatial": "encoder.pos_embed.spatial",
    "pos_embed_temporal": "encoder.pos_embed.spectral",
    "blocks.": "encoder.blocks.",
    "norm.": "encoder.norm.",
    "decoder_embed.": "decoder.embed.",
    "mask_token": "decoder.mask_token",
    "decoder_pos_embed_spatial": "decoder.pos_embed.spatial",
    "decoder_pos_embed_temporal": "decoder.pos_embed.spectral",
    "decoder_blocks.": "decoder.blocks.",
    "decoder_norm.": "decoder.norm.",
    "decoder_pred.": "decoder.pred.",
}


def read_spectralgpt(path: str | Path) -> dict[str, torch.Tensor]:
    """The model state of a SpectralGPT checkpoint (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"SpectralGPT checkpoint not found: expected a file at {str(path)!r}.")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(f"Could not read {str(path)!r} as a SpectralGPT checkpoint (weights_only=True): {err}") from err
    state = obj.get("model", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{str(path)!r} holds no SpectralGPT state dict (expected a dict with a 'model' state dict).")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not is_spectralgpt_state(state):
        raise ValueError(
            f"{str(path)!r} is not a SpectralGPT pretraining checkpoint: it lacks 'patch_embed.proj.weight' and "
            f"'pos_embed_temporal' (first keys: {list(state)[:5]}). Fine-tuned SpectralGPT models (one joint "
            "'pos_embed') are not supported."
        )
    return state


def is_spectralgpt_state(state) -> bool:
    """Whether a state dict holds SpectralGPT's pretraining keys (optionally under DDP's ``module.``)."""
    return any(
        f"{prefix}patch_embed.proj.weight" in state and f"{prefix}pos_embed_temporal" in state
        for prefix in ("", "module.")
    )


def spectralgpt_state_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SpectralGPT key names → ours (``encoder.*``, ``decoder.*``), q/k/v stacked into ``qkv``."""
    ours, qkv, unknown = {}, {}, []
    state = {k.removeprefix("module."): v for k, v in state.items()}
    for key, value in state.items():
        match = _QKV.match(key)
        if match:
            blocks, n, part, kind = match.groups()
            qkv.setdefault((blocks, n, kind), {})[part] = value
            continue
        for old, new in _RENAMES.items():
            if key == old or (old.endswith(".") and key.startswith(old)):
                ours[new + key[len(old) :]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"Unknown SpectralGPT keys (not converted, nothing dropped silently): {unknown[:10]}.")
    for (blocks, n, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise ValueError(f"{blocks}.{n}.attn has only {sorted(parts)} of q, k, v {kind}.")
        prefix = "encoder.blocks" if blocks == "blocks" else "decoder.blocks"
        ours[f"{prefix}.{n}.attn.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return ours


def spectralgpt_source_layout(state: dict[str, torch.Tensor], bands=SPECTRALGPT_BANDS) -> SourceLayout:
    """What a converted SpectralGPT state was trained on: its 12 Sentinel-2 bands and the image
    size of its spatial position table (96 px for SpectralGPT, 128 for SpectralGPT+)."""
    p = state["encoder.tokenizer.proj.weight"].shape[-1]
    side = math.isqrt(state["encoder.pos_embed.spatial"].shape[1])
    return SourceLayout(tuple(bands), (side * p, side * p))


def _load_exactly(model: torch.nn.Module, state: dict[str, torch.Tensor], path) -> None:
    """Load a converted state one to one (same bands, size and architecture: nothing to adapt)."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"The converted SpectralGPT checkpoint {str(path)!r} does not fit the model read off it: {err}") from err


def _blocks(state: dict, prefix: str) -> int:
    level = prefix.count(".") + 1
    return len({k.split(".")[level] for k in state if k.startswith(prefix + ".")})


def convert_spectralgpt(
    path: str | Path,
    mae: bool = False,
    num_heads: int | None = None,
    decoder_num_heads: int = 16,
    bands=SPECTRALGPT_BANDS,
):
    """A SpectralGPT checkpoint as our :class:`SpectralViT` (or, with ``mae=True``, :class:`SpectralMAE`).

    The architecture is read off the tensors (width, depth, patch and cube sizes, image size from
    the spatial table); ``num_heads`` defaults to ViT's for the width (768 → 12), the decoder's
    to SpectralGPT's 16. The weights load one to one; the model's ``pretrained_cfg`` records the
    source and bands. (A SpectralGPT file given as ``ckpt_path`` to any of our builders is
    converted on the fly and fitted to that model's bands and size: see
    :mod:`terratorch_specmae.weights.layouts`.)
    """
    state = spectralgpt_state_to_ours(read_spectralgpt(path))
    kernel = state["encoder.tokenizer.proj.weight"]
    width, _, t, p, _ = kernel.shape
    size = spectralgpt_source_layout(state, bands).img_size[0]  # square: the spatial table's side × p
    groups = state["encoder.pos_embed.spectral"].shape[1]
    if groups != math.ceil(len(bands) / t):
        raise ValueError(f"The checkpoint has {groups} spectral groups of {t} bands; the bands given are {len(bands)}: {list(bands)}.")
    if num_heads is None and heads_for_width(width) is None:
        raise ValueError(f"Cannot tell the number of heads of a width-{width} encoder; pass num_heads.")
    encoder = SpectralViT(
        bands=list(bands),
        img_size=size,
        patch_size=p,
        spectral_patch_size=t,
        embed_dim=width,
        depth=_blocks(state, "encoder.blocks"),
        num_heads=num_heads or heads_for_width(width),
        mlp_ratio=state["encoder.blocks.0.mlp.fc1.weight"].shape[0] / width,
        pos_embed="learnable",
    )
    cfg = PretrainedCfg(
        bands=list(bands),
        img_size=[size, size],
        pretraining_data="fMoW-Sentinel (96 px)" + (", then BigEarthNet-S2 (128 px)" if size == 128 else ""),
        masking="cube_random",
        mask_ratio=0.9,
        source=f"converted from the SpectralGPT checkpoint {Path(path).name} (Hong et al., TPAMI 2024)",
        license="other",
    )
    if not mae:
        _load_exactly(encoder, {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}, path)
        encoder.pretrained_cfg = cfg
        return encoder
    if "decoder.pred.weight" not in state:
        raise ValueError(f"{str(path)!r} has no decoder weights; convert it without mae=True.")
    model = SpectralMAE(
        encoder,
        masking="cube_random",
        mask_ratio=0.9,
        decoder_embed_dim=state["decoder.embed.weight"].shape[0],
        decoder_depth=_blocks(state, "decoder.blocks"),
        decoder_num_heads=decoder_num_heads,
        decoder_pos_embed="learnable",
        target_norm="minmax",
    )
    _load_exactly(model, state, path)
    model.pretrained_cfg = cfg
    return model

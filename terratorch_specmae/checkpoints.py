"""Reading weight files and loading encoder weights from our pretraining checkpoints."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

# where a SpectralViT's weights sit in the files we write: a Lightning checkpoint of the
# pretraining task ("model.encoder."), a SpectralMAE state dict ("encoder."), a backbone of a
# fine-tuned TerraTorch model ("model.encoder." too) or a bare encoder ("")
ENCODER_PREFIXES = ("model.encoder.", "encoder.", "")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a torch file (``weights_only=True``; Lightning's ``state_dict``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Checkpoint file not found: expected a file at {str(path)!r}.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(f"Could not read checkpoint {str(path)!r}: {err}") from err
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"Checkpoint {str(path)!r} holds no state dict of tensors (got {type(obj).__name__}).")
    return dict(obj)


def extract_module_state(state: Mapping[str, torch.Tensor], module: nn.Module, prefixes=ENCODER_PREFIXES) -> dict:
    """The entries of ``state`` that belong to ``module``, found under the first prefix that matches."""
    expected = module.state_dict()
    for prefix in prefixes:
        found = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and k[len(prefix) :] in expected}
        if found:
            return found
    sample = ", ".join(list(state)[:5])
    msg = (
        f"The checkpoint holds no weights of a {type(module).__name__} (looked under prefixes "
        f"{[p or '<none>' for p in prefixes]}); its first keys are: {sample}."
    )
    raise ValueError(msg)


def load_encoder_weights(encoder: nn.Module, path: str | Path, prefixes=ENCODER_PREFIXES) -> None:
    """Load the encoder weights in ``path`` (under the first of ``prefixes`` that matches) into
    ``encoder``; every mismatch is an error that names it."""
    found = extract_module_state(read_state_dict(path), encoder, prefixes)
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(found))
    wrong = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}" for k, v in found.items() if v.shape != expected[k].shape]
    if missing or wrong:
        details = []
        if missing:
            details.append(f"missing keys {missing[:10]}{' …' if len(missing) > 10 else ''}")
        if wrong:
            details.append("shape mismatches " + "; ".join(wrong[:10]))
        msg = (
            f"Checkpoint {str(path)!r} does not fit this encoder (bands {len(getattr(encoder, 'bands', ()))}, "
            f"image size {getattr(encoder, 'img_size', '?')}): " + "; ".join(details) + "."
        )
        raise ValueError(msg)
    encoder.load_state_dict(found, strict=True)

"""Reading weights files: safetensors, torch files, Lightning checkpoints and ``save_pretrained`` folders.

A weights source read here becomes a :class:`WeightsFile`: its tensors, what the file says about
its training (bands, image size: a :class:`~terratorch_specmae.weights.adaptation.SourceLayout`)
and what kind of file it was (``container``). Which *key layout* the tensors follow — a pretraining
checkpoint, an encoder's bare state dict, SS-MAE's two branches … — is decided afterwards by
:mod:`terratorch_specmae.weights.layouts`.

Torch files are read with ``weights_only=True`` (no code runs); ``argparse.Namespace`` is the
one class allowed besides tensors and containers (the ``args`` that MAE-style checkpoints such
as SpectralGPT's keep beside the weights).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from terratorch_specmae.bands import resolve_bands
from terratorch_specmae.weights.adaptation import SourceLayout

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
METADATA_KEY = "specmae"  # safetensors metadata entry and config.json block holding a PretrainedCfg


@dataclass
class WeightsFile:
    """Tensors of a weights source and what it says about its training (``metadata``: a PretrainedCfg dict).

    ``container``: ``"safetensors"``, ``"torch state dict"``, ``"Lightning checkpoint"``,
    ``"MAE-style checkpoint"`` (``{"model": state dict, …}``) or ``"save_pretrained folder"``.
    """

    path: str
    state: dict[str, torch.Tensor]
    layout: SourceLayout = field(default_factory=SourceLayout)
    metadata: dict = field(default_factory=dict)
    container: str = "state dict"


def _read_error(path: Path, err: Exception) -> ValueError:
    return ValueError(f"Could not read checkpoint {str(path)!r} (expected safetensors or a torch state dict): {err}")


def source_layout(bands, img_size, in_chans=None) -> SourceLayout:
    """A :class:`SourceLayout` from band names (or a count) and an image size (int or pair), either None."""
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    return SourceLayout(
        bands=resolve_bands(bands, in_chans) if bands is not None or in_chans is not None else None,
        img_size=tuple(img_size) if img_size is not None else None,
    )


def _layout_from_metadata(meta: dict) -> SourceLayout:
    return source_layout(meta.get("bands"), meta.get("img_size"))


def _layout_from_hparams(hparams: Mapping) -> SourceLayout:
    """Bands and image size from a Lightning checkpoint of a TerraTorch task (its ``model_args``)."""
    args = hparams.get("model_args") or {}
    bands = args.get("bands", args.get("backbone_bands"))
    in_chans = args.get("in_chans", args.get("backbone_in_chans"))
    img_size = args.get("img_size", args.get("backbone_img_size", args.get("window_size")))
    model = str(args.get("model", args.get("backbone", "")))
    if bands is None and in_chans is None and model.startswith(("s2mae_", "sigmae_", "ssmae_")):
        bands = "sentinel2_l2a"  # what our builders use when no bands are given
    return source_layout(bands, img_size, in_chans)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no items())
    except Exception as err:  # safetensors raises its own SafetensorError (not a ValueError) on bad files
        raise _read_error(path, err) from err
    return state, json.loads(meta[METADATA_KEY]) if METADATA_KEY in meta else {}


def load_torch_file(path: str | Path):
    """A torch file's contents, read with ``weights_only=True`` (no code runs); unreadable files are a ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Checkpoint file not found: expected a file at {str(path)!r}.")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch's unpickler raises KeyError, UnpicklingError, … on non-checkpoints)
        raise _read_error(path, err) from err


def read_config(path: str | Path) -> dict:
    """A ``config.json`` of a weights folder; unreadable or non-object JSON is a ValueError naming the file."""
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"Could not read {str(path)!r}: expected the JSON config that save_pretrained writes, got invalid JSON ({err})."
        ) from err
    if not isinstance(config, dict):
        raise ValueError(f"{str(path)!r} holds a JSON {type(config).__name__}; expected an object of model options.")
    return config


def read_weights(path: str | Path) -> WeightsFile:
    """Tensors and training layout of a local weights file or ``save_pretrained`` folder."""
    path = Path(path)
    if path.is_dir():
        config_file, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
        if not weights.is_file():
            raise ValueError(f"Weights folder {str(path)!r} has no {WEIGHTS_NAME} (found: {sorted(p.name for p in path.iterdir())}).")
        result = read_weights(weights)
        if config_file.is_file():
            meta = read_config(config_file).get(METADATA_KEY) or {}
            result.metadata = {**meta, **result.metadata}
            result.layout = _layout_from_metadata(result.metadata)
        result.path, result.container = str(path), "save_pretrained folder"
        return result
    if not path.is_file():
        raise ValueError(f"Checkpoint file not found: expected a file at {str(path)!r}.")
    if path.suffix == ".safetensors":
        state, meta = _read_safetensors(path)
        return WeightsFile(str(path), state, _layout_from_metadata(meta), meta, "safetensors")
    return weights_from_torch_object(path, load_torch_file(path))


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def weights_from_torch_object(path: str | Path, obj) -> WeightsFile:
    """The :class:`WeightsFile` of what a torch file held: a state dict, a Lightning checkpoint
    (its ``state_dict``, with bands and image size from its hyper-parameters) or an MAE-style
    checkpoint (``{"model": state dict, "optimizer": …, "args": …}``, as MAE and SpectralGPT save)."""
    layout, container = SourceLayout(), "torch state dict"
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):  # Lightning
        layout, container = _layout_from_hparams(obj.get("hyper_parameters") or {}), "Lightning checkpoint"
        obj = obj["state_dict"]
    elif isinstance(obj, Mapping) and _is_state_dict(obj.get("model")):
        obj, container = obj["model"], "MAE-style checkpoint"
    if not _is_state_dict(obj):
        raise ValueError(f"Checkpoint {str(path)!r} holds no state dict of tensors (got {type(obj).__name__}).")
    return WeightsFile(str(path), dict(obj), layout, container=container)

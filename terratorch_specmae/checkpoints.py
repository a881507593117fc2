"""Reading weight files and loading them into our models: prefixes found, bands and sizes adapted, keys reported.

A weights source is a local file (``.safetensors``; ``.ckpt``/``.pt``/``.pth`` read with
``weights_only=True``), a folder written by ``save_pretrained`` (``config.json`` +
``model.safetensors``) or a Hub reference (see :func:`terratorch_specmae.hub.resolve_weights`).

:func:`load_weights` finds every encoder (:class:`SpectralViT`) and MAE decoder of the target
model in the file, whatever wraps it — a Lightning checkpoint of our pretraining task
(``model.encoder.*``) or of a fine-tuned TerraTorch model, a ``save_pretrained`` folder of an
encoder (no prefix) or of an MAE (``encoder.*``, ``decoder.*``), a bare state dict — then fits
the weights to the model's bands and image size (:mod:`terratorch_specmae.adaptation`). Missing
keys and shape mismatches that cannot be adapted are errors naming them; unexpected keys are a
warning; what was adapted is logged and returned in a :class:`LoadReport`.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from terratorch_specmae.adaptation import SourceLayout, adapt_decoder_state, adapt_encoder_state
from terratorch_specmae.bands import resolve_bands

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
METADATA_KEY = "specmae"  # safetensors metadata entry and config.json block holding a PretrainedCfg
ENCODER_ANCHOR = "tokenizer.proj.weight"
DECODER_ANCHOR = "pred.weight"


@dataclass
class WeightsFile:
    """Tensors of a weights source and what it says about its training (``metadata``: a PretrainedCfg dict)."""

    path: str
    state: dict[str, torch.Tensor]
    layout: SourceLayout = field(default_factory=SourceLayout)
    metadata: dict = field(default_factory=dict)


@dataclass
class LoadReport:
    """What :func:`load_weights` did: which file prefix fed which module, what it adapted, what it skipped."""

    source: str
    prefixes: dict[str, str] = field(default_factory=dict)  # module path → prefix in the file
    adapted: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)  # modules absent from the file, left as initialised
    new_bands: list[str] = field(default_factory=list)  # model bands the checkpoint lacks (initialised, not loaded)
    ignored: int = 0  # tensors of other modules (a decoder, a task head)


def _read_error(path: Path, err: Exception) -> ValueError:
    return ValueError(f"Could not read checkpoint {str(path)!r} (expected safetensors or a torch state dict): {err}")


def _layout(bands, img_size, in_chans=None) -> SourceLayout:
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    return SourceLayout(
        bands=resolve_bands(bands, in_chans) if bands is not None or in_chans is not None else None,
        img_size=tuple(img_size) if img_size is not None else None,
    )


def _layout_from_metadata(meta: dict) -> SourceLayout:
    return _layout(meta.get("bands"), meta.get("img_size"))


def _layout_from_hparams(hparams: Mapping) -> SourceLayout:
    """Bands and image size from a Lightning checkpoint of a TerraTorch task (its ``model_args``)."""
    args = hparams.get("model_args") or {}
    bands = args.get("bands", args.get("backbone_bands"))
    in_chans = args.get("in_chans", args.get("backbone_in_chans"))
    img_size = args.get("img_size", args.get("backbone_img_size", args.get("window_size")))
    model = str(args.get("model", args.get("backbone", "")))
    if bands is None and in_chans is None and model.startswith(("s2mae_", "sigmae_", "ssmae_")):
        bands = "sentinel2_l2a"  # what our builders use when no bands are given
    return _layout(bands, img_size, in_chans)


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
        result.path = str(path)
        return result
    if not path.is_file():
        raise ValueError(f"Checkpoint file not found: expected a file at {str(path)!r}.")
    if path.suffix == ".safetensors":
        state, meta = _read_safetensors(path)
        return WeightsFile(str(path), state, _layout_from_metadata(meta), meta)
    return weights_from_torch_object(path, load_torch_file(path))


def weights_from_torch_object(path: str | Path, obj) -> WeightsFile:
    """The :class:`WeightsFile` of what a torch file held: a state dict, or a Lightning checkpoint
    (its ``state_dict``, with bands and image size from its hyper-parameters)."""
    layout = SourceLayout()
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):  # Lightning
        layout = _layout_from_hparams(obj.get("hyper_parameters") or {})
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"Checkpoint {str(path)!r} holds no state dict of tensors (got {type(obj).__name__}).")
    return WeightsFile(str(path), dict(obj), layout)


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _candidate_prefixes(path: str, only_one: bool) -> list[str]:
    """Where a module at ``path`` of our model may sit in a file (first match wins)."""
    names = [path, _join(path, "encoder"), _join("encoder", path)]
    if path == "encoder" or path.endswith(".encoder"):
        names.append(path.rsplit("encoder", 1)[0].rstrip("."))
    if only_one:
        names += ["encoder", ""]
    prefixes = []
    for name in names:
        for prefix in (_join("model", name) + ".", f"{name}." if name else ""):
            if prefix not in prefixes:
                prefixes.append(prefix)
    return prefixes


def _find(state: Mapping, anchor: str, candidates: list[str]) -> str | None:
    return next((p for p in candidates if p + anchor in state), None)


def _parts(model: nn.Module) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
    """The model's encoders and MAE decoders by path."""
    from terratorch_specmae.models.decoder import MAEDecoder
    from terratorch_specmae.models.encoder import SpectralViT

    encoders = {n: m for n, m in model.named_modules() if isinstance(m, SpectralViT)}
    decoders = {n: m for n, m in model.named_modules() if isinstance(m, MAEDecoder)}
    return encoders, decoders


def _sibling_path(decoder_path: str) -> str:
    """The path of the encoder beside a decoder (``spatial.decoder`` → ``spatial.encoder``)."""
    return _join(decoder_path.rsplit("decoder", 1)[0].rstrip("."), "encoder")


def _check_shapes(module_path: str, found: dict, expected: dict, source: str, module: nn.Module) -> None:
    missing = sorted(set(expected) - set(found))
    wrong = [
        f"{_join(module_path, k)}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in found.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if not missing and not wrong:
        return
    details = []
    if missing:
        details.append(f"missing keys {missing[:10]}{' …' if len(missing) > 10 else ''}")
    if wrong:
        details.append("shape mismatches " + "; ".join(wrong[:10]))
    bands = getattr(module, "bands", None)
    what = f"{type(module).__name__}" + (f" (bands {len(bands)}, image size {module.img_size})" if bands else "")
    raise ValueError(f"Checkpoint {source!r} does not fit this {what}: " + "; ".join(details) + ".")


def load_weights(
    model: nn.Module,
    source,
    pretrained_bands=None,
    pretrained_img_size=None,
    new_band_init: str = "wavelength",
    resize_pos_embed: str = "interpolate",
) -> LoadReport:
    """Load the weights of ``source`` into every encoder and MAE decoder of ``model``.

    Args:
        source: a path, a ``save_pretrained`` folder, a :class:`WeightsFile`, or a Hub reference
            (``hf://org/repo[@revision][/file]`` or ``{repo_id, filename, revision}``).
        pretrained_bands: the checkpoint's band names, where the file does not record them (a
            bare state dict); they override what the file says.
        pretrained_img_size: the checkpoint's image size, likewise.
        new_band_init, resize_pos_embed: see :mod:`terratorch_specmae.adaptation`.

    Every encoder must be in the file. A decoder that is not (weights of an encoder only) stays
    as initialised, with a warning.
    """
    if not isinstance(source, WeightsFile):
        from terratorch_specmae.hub import read_pretrained  # the Hub module reads files with this one

        source = read_pretrained(source)
    layout = source.layout
    if pretrained_bands is not None or pretrained_img_size is not None:
        layout = SourceLayout(
            bands=resolve_bands(pretrained_bands) if pretrained_bands is not None else layout.bands,
            img_size=_layout(None, pretrained_img_size).img_size if pretrained_img_size is not None else layout.img_size,
        )
    state, report = source.state, LoadReport(source.path)
    encoders, decoders = _parts(model)
    if not encoders:
        raise ValueError(f"{type(model).__name__} has no SpectralViT encoder to load weights into.")
    new_state, used, weight_layouts = {}, set(), {}

    def take(path: str, module: nn.Module, prefix: str, part: dict, adapted: dict) -> None:
        """Check ``adapted`` (the module's part of the file, fitted) against ``module`` and keep it."""
        expected = module.state_dict()
        _check_shapes(path, {k: v for k, v in adapted.items() if k in expected}, expected, source.path, module)
        report.unexpected += [prefix + k for k in adapted if k not in expected]
        report.prefixes[path] = prefix
        used.update(prefix + k for k in part)
        new_state.update({_join(path, k): v for k, v in adapted.items() if k in expected})

    for path, encoder in encoders.items():
        candidates = _candidate_prefixes(path, only_one=len(encoders) == 1)
        prefix = _find(state, ENCODER_ANCHOR, candidates)
        if prefix is None:
            sample = ", ".join(list(state)[:5])
            raise ValueError(
                f"The checkpoint {source.path!r} holds no weights of a SpectralViT for {path or 'the model'} (looked "
                f"for '{ENCODER_ANCHOR}' under prefixes {[p or '<none>' for p in candidates]}); "
                f"its first keys are: {sample}."
            )
        part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        adapted, notes, new, weight_bands = adapt_encoder_state(part, encoder, layout, new_band_init, resize_pos_embed)
        weight_layouts[path] = SourceLayout(bands=weight_bands, img_size=layout.img_size)
        take(path, encoder, prefix, part, adapted)
        report.adapted += [f"{path or 'encoder'}: {n}" for n in notes]
        report.new_bands += [b for b in new if b not in report.new_bands]
    for path, decoder in decoders.items():
        prefix = _find(state, DECODER_ANCHOR, [_join("model", path) + ".", f"{path}."])
        if prefix is None:
            report.fresh.append(path)
            continue
        part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        encoder_path = _sibling_path(path)
        encoder, weight_layout = encoders[encoder_path], weight_layouts[encoder_path]
        adapted = adapt_decoder_state(part, decoder, encoder, weight_layout, new_band_init, resize_pos_embed)
        take(path, decoder, prefix, part, adapted)
    report.ignored = len(set(state) - used)
    model.load_state_dict(new_state, strict=False)
    _log(report)
    return report


def _log(report: LoadReport) -> None:
    where = ", ".join(f"{m or 'encoder'} ← {p or '<no prefix>'}" for m, p in report.prefixes.items())
    logger.info("Loaded %s: %s", report.source, where)
    for note in report.adapted:
        logger.info("Adapted %s", note)
    if report.unexpected:
        warnings.warn(
            f"Checkpoint {report.source!r} has {len(report.unexpected)} keys this model does not use: "
            f"{report.unexpected[:10]}{' …' if len(report.unexpected) > 10 else ''}",
            stacklevel=3,
        )
    if report.new_bands:
        warnings.warn(
            f"Checkpoint {report.source!r} has no weights for bands {report.new_bands}: initialised "
            "(new_band_init), to be learnt in fine-tuning.",
            stacklevel=3,
        )
    if report.fresh:
        warnings.warn(
            f"Checkpoint {report.source!r} has no weights for {report.fresh}: left as initialised.", stacklevel=3
        )

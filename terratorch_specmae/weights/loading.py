"""Loading weights into our models: the file's layout found, bands and sizes adapted, keys reported.

A weights source is a local file (``.safetensors``; ``.ckpt``/``.pt``/``.pth`` read with
``weights_only=True``), a folder written by ``save_pretrained`` (``config.json`` +
``model.safetensors``), a Hub reference (see :func:`terratorch_specmae.weights.hub.resolve_weights`)
or a :class:`~terratorch_specmae.weights.files.WeightsFile` already read.

:func:`load_weights` matches the file against the known layouts
(:mod:`terratorch_specmae.weights.layouts`: a Lightning checkpoint of our pretraining task or of
a fine-tuned TerraTorch model, an MAE's or an encoder's state, SS-MAE's two branches,
SpectralGPT's keys …), takes every encoder (:class:`SpectralViT`) and MAE decoder of the target
model from its branch in the file, then fits the weights to the model's bands and image size
(:mod:`terratorch_specmae.weights.adaptation`). Missing keys and shape mismatches that cannot be
adapted are errors naming them; unexpected keys are a warning; what was adapted is logged and
returned in a :class:`LoadReport`, which names the layout matched.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

from torch import nn

from terratorch_specmae.bands import band_list, resolve_bands
from terratorch_specmae.models.decoder import MAEDecoder
from terratorch_specmae.models.encoder import SpectralViT
from terratorch_specmae.weights.adaptation import (
    NEW_BAND_INITS,
    POS_EMBED_RESIZES,
    SourceLayout,
    adapt_decoder_state,
    adapt_encoder_state,
)
from terratorch_specmae.weights.files import source_layout
from terratorch_specmae.weights.hub import read_pretrained
from terratorch_specmae.weights.layouts import DECODER_ANCHOR, LAYOUTS, branch_of, match_layout

logger = logging.getLogger(__name__)

LOAD_OPTIONS = ("ckpt_path", "pretrained_bands", "pretrained_img_size", "new_band_init", "resize_pos_embed")


@dataclass
class LoadReport:
    """What :func:`load_weights` did: the layout it matched, which file prefix fed which module, what
    it adapted, what it skipped."""

    source: str
    layout: str = ""  # the name of the matched row of terratorch_specmae.weights.layouts.LAYOUTS
    container: str = ""  # the kind of file (safetensors, Lightning checkpoint, save_pretrained folder …)
    prefixes: dict[str, str] = field(default_factory=dict)  # module path → prefix in the file
    adapted: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)  # modules absent from the file, left as initialised
    new_bands: list[str] = field(default_factory=list)  # model bands the checkpoint lacks (initialised, not loaded)
    ignored: int = 0  # tensors of other modules (a decoder, a task head)
    dropped: list[str] = field(default_factory=list)  # parts of a converted file left out on purpose (a class token)


def check_load_options(new_band_init: str = "wavelength", resize_pos_embed: str = "interpolate") -> None:
    """The load options' values, checked even when nothing is loaded (a typo in YAML is an error at once)."""
    if new_band_init not in NEW_BAND_INITS:
        raise ValueError(f"new_band_init must be one of {NEW_BAND_INITS}, got {new_band_init!r}.")
    if resize_pos_embed not in POS_EMBED_RESIZES:
        raise ValueError(f"resize_pos_embed must be one of {POS_EMBED_RESIZES}, got {resize_pos_embed!r}.")


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _parts(model: nn.Module) -> tuple[dict[str, SpectralViT], dict[str, MAEDecoder]]:
    """The model's encoders and MAE decoders by path."""
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
        new_band_init, resize_pos_embed: see :mod:`terratorch_specmae.weights.adaptation`.

    Every encoder must be in the file. A decoder that is not (weights of an encoder only) stays
    as initialised, with a warning.
    """
    check_load_options(new_band_init, resize_pos_embed)
    source = read_pretrained(source)
    encoders, decoders = _parts(model)
    if not encoders:
        raise ValueError(f"{type(model).__name__} has no SpectralViT encoder to load weights into.")
    layout = match_layout(source.state)
    if layout is None:
        looked_for = "; ".join(f"{row.name}: {', '.join(row.anchors())}" for row in LAYOUTS if row.detect is None)
        sample = ", ".join(list(source.state)[:5])
        raise ValueError(
            f"The checkpoint {source.path!r} holds no weights of a SpectralViT in any known layout (looked for "
            f"{looked_for}; or SpectralGPT's patch_embed.proj.weight + pos_embed_temporal; or a timm ViT's 4-D patch_embed.proj.weight + "
            f"pos_embed + blocks.0.attn.qkv.weight); its first keys are: {sample}."
        )
    state, trained_on = source.state, source.layout
    dropped = layout.dropped(state) if layout.dropped is not None else []
    if layout.convert is not None:
        state = layout.convert(state)
        file_says = layout.source_layout(state)
        trained_on = SourceLayout(trained_on.bands or file_says.bands, trained_on.img_size or file_says.img_size)
    if pretrained_bands is not None or pretrained_img_size is not None:
        trained_on = SourceLayout(
            bands=resolve_bands(pretrained_bands) if pretrained_bands is not None else trained_on.bands,
            img_size=source_layout(None, pretrained_img_size).img_size if pretrained_img_size is not None else trained_on.img_size,
        )
    report = LoadReport(source.path, layout.name, source.container, dropped=dropped)
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
        prefix = layout.encoder_prefix(branch_of(path))
        if prefix is None:
            branches = [b or "one encoder" for b in layout.branches]
            raise ValueError(
                f"The checkpoint {source.path!r} is {layout.description} ({layout.name}: {', '.join(branches)}); "
                f"it holds no weights of a SpectralViT for {path or 'the model'} of this {type(model).__name__} "
                f"(branches {sorted({branch_of(p) or 'one encoder' for p in encoders})})."
            )
        part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        adapted, notes, new, weight_bands = adapt_encoder_state(part, encoder, trained_on, new_band_init, resize_pos_embed)
        weight_layouts[path] = SourceLayout(bands=weight_bands, img_size=trained_on.img_size)
        take(path, encoder, prefix, part, adapted)
        report.adapted += [f"{path or 'encoder'}: {n}" for n in notes]
        report.new_bands += [b for b in new if b not in report.new_bands]
    for path, decoder in decoders.items():
        prefix = layout.decoder_prefix(branch_of(path))
        if prefix is None or prefix + DECODER_ANCHOR not in state:
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
    logger.info("Loaded %s (%s, layout %s): %s", report.source, report.container, report.layout, where)
    for note in report.adapted:
        logger.info("Adapted %s", note)
    if report.unexpected:
        warnings.warn(
            f"Checkpoint {report.source!r} has {len(report.unexpected)} keys this model does not use: "
            f"{report.unexpected[:10]}{' …' if len(report.unexpected) > 10 else ''}",
            stacklevel=3,
        )
    for note in report.dropped:
        logger.info("Not carried over from %s: %s", report.source, note)
    if report.new_bands:
        warnings.warn(
            f"Checkpoint {report.source!r} has no weights for bands {band_list(report.new_bands)}: initialised "
            "(new_band_init), to be learnt in fine-tuning.",
            stacklevel=3,
        )
    if report.fresh:
        warnings.warn(
            f"Checkpoint {report.source!r} has no weights for {report.fresh}: left as initialised.", stacklevel=3
        )

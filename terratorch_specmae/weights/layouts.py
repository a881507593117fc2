"""The known checkpoint layouts, as a table: where each encoder and MAE decoder sits in a file.

Our weights reach users in several shapes: the pretraining task's Lightning checkpoint, a
TerraTorch fine-tuning checkpoint, an MAE's or an encoder's state dict (``save_pretrained``
folders hold these), SS-MAE's two branches, SpectralGPT's pretraining file. Each row of
:data:`LAYOUTS` names one, says where its model sits in the file (``root``) and what model it
is (``kind``: which encoders and decoders, under which names). :func:`match_layout` returns the
first row whose anchor tensors the file holds; the load report names it.

A model loads from a layout by *branch*: a plain encoder or MAE has one branch (``""``),
SS-MAE two (``"spatial"``, ``"spectral"``). Every encoder of the model takes the encoder of its
branch in the file; an MAE decoder takes its branch's decoder when the file has one and stays
as initialised otherwise (weights of an encoder alone).

=====================================  ================  ===============================================
layout                                 root              holds
=====================================  ================  ===============================================
``ssmae-pretraining-checkpoint``       ``model.``        SS-MAE: ``spatial.encoder`` / ``.decoder``, ``spectral.…``
``ssmae-finetuning-checkpoint``        ``model.encoder.`` SS-MAE encoders: ``spatial``, ``spectral``
``ssmae-state``                        (none)            SS-MAE, as ``ssmae_base_mae``'s ``save_pretrained``
``ssmae-encoder-state``                (none)            SS-MAE encoders, as ``ssmae_base``'s ``save_pretrained``
``ssmae-encoder-prefixed-state``       ``encoder.``      SS-MAE encoders in a TerraTorch model's state
``pretraining-checkpoint``             ``model.``        an MAE: ``encoder``, ``decoder``
``finetuning-checkpoint``              ``model.encoder.`` an encoder (TerraTorch's ``encoder``: our backbone)
``temporal-finetuning-checkpoint``     ``model.encoder.encoder.`` an encoder in TerraTorch's temporal wrapper
``mae-state``                          (none)            an MAE, as ``s2mae_vit_*_mae``'s ``save_pretrained``
``encoder-prefixed-state``             (none)            an MAE's ``encoder`` without its decoder
``encoder-state``                      (none)            an encoder, as ``s2mae_vit_*``'s ``save_pretrained``
``model-prefixed-encoder-state``       ``model.``        an encoder that is a task's whole ``model``
``spectralgpt``                        (none)            SpectralGPT(+) pretraining keys, converted
``timm-vit``                           (none)            a timm / MAE ViT encoder (SSL4EO-S12), converted
=====================================  ================  ===============================================

A converted layout may leave parts of the file out on purpose (a timm ViT's class token): its
``dropped`` names them, and the load report lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from terratorch_specmae.weights.adaptation import SourceLayout
from terratorch_specmae.weights.converters import (
    is_spectralgpt_state,
    is_timm_vit_state,
    spectralgpt_source_layout,
    spectralgpt_state_to_ours,
    timm_vit_dropped,
    timm_vit_source_layout,
    timm_vit_state_to_ours,
)

ENCODER_ANCHOR = "tokenizer.proj.weight"  # every SpectralViT has it
DECODER_ANCHOR = "pred.weight"  # every MAEDecoder has it

# what a model of each kind holds: branch → where its encoder / decoder sits below the model's root
KINDS: dict[str, dict[str, dict[str, str]]] = {
    "encoder": {"encoders": {"": ""}, "decoders": {}},
    "mae": {"encoders": {"": "encoder."}, "decoders": {"": "decoder."}},
    "ssmae_encoder": {"encoders": {"spatial": "spatial.", "spectral": "spectral."}, "decoders": {}},
    "ssmae": {
        "encoders": {"spatial": "spatial.encoder.", "spectral": "spectral.encoder."},
        "decoders": {"spatial": "spatial.decoder.", "spectral": "spectral.decoder."},
    },
}


@dataclass(frozen=True)
class CheckpointLayout:
    """One known layout: ``name``, what it is, where the model sits (``root``) and what it holds (``kind``).

    The layout matches a file holding every encoder anchor of ``kind`` under ``root`` and, when
    ``with_decoders``, every decoder anchor too. ``convert`` (SpectralGPT, timm ViTs) first maps foreign
    key names to ours, ``source_layout`` says what the file was trained on where the file does not,
    and ``dropped`` names what of the file is left out on purpose.
    """

    name: str
    description: str
    root: str
    kind: str
    with_decoders: bool = False
    detect: Callable[[Mapping[str, torch.Tensor]], bool] | None = None
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    source_layout: Callable[[dict[str, torch.Tensor]], SourceLayout] | None = None
    dropped: Callable[[Mapping[str, torch.Tensor]], list[str]] | None = None

    def encoder_prefix(self, branch: str) -> str | None:
        where = KINDS[self.kind]["encoders"].get(branch)
        return None if where is None else self.root + where

    def decoder_prefix(self, branch: str) -> str | None:
        where = KINDS[self.kind]["decoders"].get(branch)
        return None if where is None else self.root + where

    @property
    def branches(self) -> tuple[str, ...]:
        return tuple(KINDS[self.kind]["encoders"])

    def anchors(self) -> list[str]:
        """The tensors a file of this layout must hold."""
        found = [self.encoder_prefix(b) + ENCODER_ANCHOR for b in self.branches]
        if self.with_decoders:
            found += [self.decoder_prefix(b) + DECODER_ANCHOR for b in KINDS[self.kind]["decoders"]]
        return found

    def matches(self, state: Mapping[str, torch.Tensor]) -> bool:
        if self.detect is not None:
            return self.detect(state)
        return all(key in state for key in self.anchors())


LAYOUTS: tuple[CheckpointLayout, ...] = (
    CheckpointLayout(
        "ssmae-pretraining-checkpoint", "a Lightning checkpoint of SS-MAE pretraining (ssmae_base_mae)",
        "model.", "ssmae", with_decoders=True,
    ),
    CheckpointLayout(
        "ssmae-finetuning-checkpoint", "a Lightning checkpoint of a TerraTorch model fine-tuned from the ssmae_base backbone",
        "model.encoder.", "ssmae_encoder",
    ),
    CheckpointLayout("ssmae-state", "the state of an SS-MAE pretraining model (ssmae_base_mae)", "", "ssmae",
                     with_decoders=True),
    CheckpointLayout("ssmae-encoder-state", "the state of SS-MAE's two encoders (ssmae_base)", "", "ssmae_encoder"),
    CheckpointLayout(
        "ssmae-encoder-prefixed-state", "the state of a TerraTorch model with the ssmae_base backbone (encoder.*)",
        "encoder.", "ssmae_encoder",
    ),
    CheckpointLayout(
        "pretraining-checkpoint", "a Lightning checkpoint of our pretraining task (SpectralMAETask): encoder and decoder",
        "model.", "mae", with_decoders=True,
    ),
    CheckpointLayout(
        "finetuning-checkpoint", "a Lightning checkpoint of a TerraTorch model with our backbone as its encoder",
        "model.encoder.", "encoder",
    ),
    CheckpointLayout(
        "temporal-finetuning-checkpoint",
        "a Lightning checkpoint of a TerraTorch model with our backbone in its temporal wrapper",
        "model.encoder.encoder.", "encoder",
    ),
    CheckpointLayout("mae-state", "the state of a masked autoencoder (encoder.*, decoder.*)", "", "mae", with_decoders=True),
    CheckpointLayout("encoder-prefixed-state", "the encoder of a masked autoencoder (encoder.*), no decoder", "", "mae"),
    CheckpointLayout("encoder-state", "the state of an encoder (a backbone), no prefix", "", "encoder"),
    CheckpointLayout("model-prefixed-encoder-state", "the state of a task whose model is the encoder (model.*)",
                     "model.", "encoder"),
    CheckpointLayout(
        "spectralgpt", "a SpectralGPT(+) pretraining checkpoint (converted: terratorch_specmae.weights.converters)",
        "", "mae", detect=is_spectralgpt_state, convert=spectralgpt_state_to_ours, source_layout=spectralgpt_source_layout,
    ),
    CheckpointLayout(
        "timm-vit", "a timm / MAE ViT encoder, e.g. SSL4EO-S12's (converted: terratorch_specmae.weights.converters)",
        "", "encoder", detect=is_timm_vit_state, convert=timm_vit_state_to_ours, source_layout=timm_vit_source_layout,
        dropped=timm_vit_dropped,
    ),
)


def match_layout(state: Mapping[str, torch.Tensor]) -> CheckpointLayout | None:
    """The first layout of :data:`LAYOUTS` that ``state`` follows, or None."""
    return next((layout for layout in LAYOUTS if layout.matches(state)), None)


def branch_of(module_path: str) -> str:
    """The branch of an encoder or decoder at ``module_path`` in our models: ``spatial.encoder`` → ``spatial``,
    ``encoder`` / ``decoder`` / the model itself → ``""``."""
    path = module_path
    for part in ("encoder", "decoder"):
        if path == part or path.endswith("." + part):
            path = path[: -len(part)].rstrip(".")
    return path

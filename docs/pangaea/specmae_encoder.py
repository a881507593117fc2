"""terratorch-specmae's S2MAE / SIGMAE encoders as a PANGAEA-bench encoder.

Copy this file to ``pangaea/encoders/specmae_encoder.py`` in a PANGAEA-bench checkout and
``specmae_s2mae.yaml`` / ``specmae_sigmae.yaml`` to ``configs/encoder/`` (docs/pangaea/README.md
says which commit and how to run it). terratorch-specmae must be installed in the same
environment: the encoder is built through TerraTorch's ``BACKBONE_REGISTRY`` like any
TerraTorch config builds it.

PANGAEA's contract (``pangaea.encoders.base.Encoder``): the constructor takes the Hydra encoder
config; ``load_encoder_weights(logger)`` loads weights after construction; ``forward`` takes
``{modality: [B, C, H, W]}`` (single-temporal encoders get one date) with the bands of
``input_bands`` in that order, and returns one ``[B, output_dim, H', W']`` map per
``output_layers`` entry. Bands: PANGAEA's names (``B1`` … ``B12``, ``B8A``, ``VV``, ``VH``)
become ours (``B01`` … ``B12``, ``B8A``, ``VV``, ``VH``); the modalities of ``input_bands``
(``optical``, ``sar``) are stacked in that order into one input, as our encoders take
optical and SAR bands together.
"""

from __future__ import annotations

import re
from logging import Logger
from pathlib import Path

import torch
from pangaea.encoders.base import Encoder
from terratorch.registry import BACKBONE_REGISTRY

import terratorch_specmae  # noqa: F401  (registers the s2mae_ / sigmae_ backbones)
from terratorch_specmae.bands import band_info
from terratorch_specmae.weights import LOAD_OPTIONS, load_weights

_S2_NAME = re.compile(r"^B0?(\d{1,2}|8A)$", re.IGNORECASE)


def specmae_band(name: str) -> str:
    """Our name of a PANGAEA band name: ``B1`` → ``B01``, ``B8A`` → ``B8A``, ``VV`` → ``VV``."""
    match = _S2_NAME.match(name.strip())
    ours = name.strip().upper()
    if match:
        code = match.group(1).upper()
        ours = "B8A" if code == "8A" else f"B{int(code):02d}"
    band_info(ours)  # ValueError naming the accepted names
    return ours


class SpecMAE_Encoder(Encoder):  # noqa: N801  (PANGAEA's naming: Prithvi_Encoder, SpectralGPT_Encoder …)
    """A registered terratorch-specmae backbone (``s2mae_vit_base``, ``sigmae_vit_base`` …) for PANGAEA.

    Args:
        encoder_weights: weights to load (a pretraining ``last.ckpt``, a ``save_pretrained``
            folder, a safetensors file or an ``hf://`` reference); ``null`` keeps the random
            initialisation (with a warning).
        input_size: the image size the encoder is built for (PANGAEA resizes inputs to it).
        input_bands: ``{modality: [band, …]}`` in PANGAEA's names.
        output_layers: blocks whose outputs go to the decoder.
        output_dim: channels of each output (``embed_dim × spectral groups`` for S2MAE with
            ``fold: concat``, ``embed_dim`` otherwise); checked against the built model.
        backbone: the registered name.
        download_url: unused (weights come from ``encoder_weights``); kept for PANGAEA's base class.
        **backbone_kwargs: further builder options (``patch_size``, ``fold`` …); the load options
            (``pretrained_bands``, ``pretrained_img_size``, ``new_band_init``, ``resize_pos_embed``)
            are kept for :meth:`load_encoder_weights`.
    """

    def __init__(
        self,
        encoder_weights: str | Path | None,
        input_size: int,
        input_bands: dict[str, list[str]],
        output_layers: list[int],
        output_dim: int | list[int],
        backbone: str = "s2mae_vit_base",
        download_url: str = "",
        **backbone_kwargs,
    ) -> None:
        bands = [specmae_band(b) for modality in input_bands for b in input_bands[modality]]
        load_options = {k: backbone_kwargs.pop(k) for k in LOAD_OPTIONS if k in backbone_kwargs}
        if load_options.pop("ckpt_path", None):
            raise ValueError("Give the weights as encoder_weights (PANGAEA loads them after building), not ckpt_path.")
        model = BACKBONE_REGISTRY.build(
            backbone, bands=bands, img_size=input_size, out_indices=list(output_layers), **backbone_kwargs
        )
        super().__init__(
            model_name=backbone,
            input_bands=input_bands,
            input_size=input_size,
            embed_dim=model.embed_dim,
            output_layers=list(output_layers),
            output_dim=output_dim,
            multi_temporal=False,
            multi_temporal_output=False,
            pyramid_output=False,
            encoder_weights=encoder_weights or "",
            download_url=download_url,
        )
        if self.output_dim != list(model.out_channels):
            raise ValueError(
                f"output_dim {output_dim} does not match the encoder's output channels {model.out_channels} "
                f"({backbone} with {len(bands)} bands and fold {model.fold!r}); set output_dim to {model.out_channels[0]}."
            )
        self.model, self.load_options = model, load_options

    def load_encoder_weights(self, logger: Logger) -> None:
        if not self.encoder_weights:
            logger.warning(f"{self.model_name}: no encoder_weights given, the encoder keeps its random initialisation.")
            return
        report = load_weights(self.model, str(self.encoder_weights), **self.load_options)
        logger.info(
            f"{self.model_name}: loaded {self.encoder_weights} (layout {report.layout}; adapted {report.adapted or 'nothing'}; "
            f"new bands {report.new_bands or 'none'})"
        )

    def forward(self, image: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        x = torch.cat([image[modality] for modality in self.input_bands], dim=1)
        return self.model.prepare_features_for_image_model(self.model(x))

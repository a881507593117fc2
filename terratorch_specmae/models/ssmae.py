"""SS-MAE, the host model of MRS: a spatial branch (a token per pixel) and a spectral branch (a token per band).

Input: pixel-centred patches ``[B, C, P, P]`` (``P = window_size``, SS-MAE's "patch size"; named
apart from TerraTorch's ``patch_size``, which makes its factories pad inputs) of a hyperspectral image with an auxiliary
modality (SAR, LiDAR DSM) concatenated as extra bands. Both branches are our
:class:`SpectralViT` with different tokenizers, and each is pretrained as our
:class:`SpectralMAE`:

* **spatial**: ``patch_size=1``, one token per pixel over all ``C`` bands (SS-MAE's 1×1
  convolution embedding), ``P·P`` tokens, masked by ``spatial_masking`` (``random``);
* **spectral**: ``patch_size=P``, ``spectral_patch_size=1``, one token per band over the
  ``P×P`` patch (SS-MAE's ``Linear(P·P → D)``), ``C`` tokens, masked by ``spectral_masking``
  — ``random`` (SS-MAE) or ``redundant_spectra`` (MRS), the paper's one-for-one swap.

The pretraining loss is the sum of the two branches' masked MSE. Fixed sin-cos positions
(2D over the pixel grid, 1D over the bands); sizes default to SS-MAE's: width 256, depth 2,
8 heads, decoders of the same size, mask ratio 0.3 in both branches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from terratorch.models.model import ReconstructionOutput
from torch import nn

from terratorch_specmae.models.encoder import SpectralViT
from terratorch_specmae.models.hub_mixin import HubMixin
from terratorch_specmae.models.mae import SpectralMAE
from terratorch_specmae.models.run_switches import CompositeSwitches


def _branch_encoders(
    bands, in_chans, window_size: int, embed_dim: int, depth: int, num_heads: int, pos_embed: str, nan_policy: str
) -> tuple[SpectralViT, SpectralViT]:
    """The spatial and spectral encoders."""
    common = {
        "bands": bands, "in_chans": in_chans, "img_size": window_size, "embed_dim": embed_dim, "depth": depth,
        "num_heads": num_heads, "pos_embed": pos_embed, "nan_policy": nan_policy, "dynamic_img_size": False,
    }
    spatial = SpectralViT(patch_size=1, spectral_patch_size=None, **common)
    spectral = SpectralViT(patch_size=window_size, spectral_patch_size=1, **common)
    return spatial, spectral


class _SSMAECard:
    """Model-card text shared by the two SS-MAE classes."""

    def family_tag(self) -> str:
        return "ssmae"

    def card_architecture(self) -> str:
        branch = self.spatial if isinstance(self.spatial, SpectralViT) else self.spatial.encoder
        return f": two branches (pixel tokens, band tokens), width {branch.embed_dim}, {branch.depth} blocks each"

    def card_variant(self) -> str:
        return "ssmae_base"


class SSMAEEncoder(_SSMAECard, CompositeSwitches, nn.Module, HubMixin):
    """The two SS-MAE encoders as a TerraTorch backbone (pixel classification).

    ``forward`` returns one feature map ``[B, 2·D, P, P]``-ready token tensor ``[B, P·P, 2·D]``:
    each pixel's spatial token next to the mean of the spectral (band) tokens, so a
    classification head that pools over the patch sees both branches. The builder
    ``ssmae_base`` loads both encoders from an SS-MAE pretraining checkpoint (``ckpt_path``), fitted
    to this model's bands by name. The run switches apply to both branches.
    """

    def __init__(
        self,
        bands: str | Sequence[str] | None = None,
        in_chans: int | None = None,
        window_size: int = 7,
        embed_dim: int = 256,
        depth: int = 2,
        num_heads: int = 8,
        pos_embed: str = "sincos",
        nan_policy: str = "error",
    ) -> None:
        super().__init__()
        self.spatial, self.spectral = _branch_encoders(
            bands, in_chans, window_size, embed_dim, depth, num_heads, pos_embed, nan_policy
        )
        self.bands, self.window_size, self.embed_dim = self.spatial.bands, window_size, embed_dim
        # TerraTorch pads inputs to twice the first `patch_size` it finds among the backbone's
        # modules; pixel-centred patches must reach the encoders as they are, so this one is None
        self.patch_size = None
        self.out_channels = [2 * embed_dim]

    def forward(self, x: torch.Tensor, **kwargs) -> list[torch.Tensor]:
        spatial = self.spatial(x)[-1]  # [B, P·P, D] (one group: folding changes nothing)
        spectral = self.spectral.encode(self.spectral.embed(x)[0])  # [B, C, D]
        summary = spectral.mean(dim=1, keepdim=True).expand(-1, spatial.shape[1], -1)
        return [torch.cat([spatial, summary], dim=-1)]

    def prepare_features_for_image_model(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        p = self.window_size
        return [f.transpose(1, 2).reshape(f.shape[0], -1, p, p) for f in features]


class SSMAE(_SSMAECard, CompositeSwitches, nn.Module, HubMixin):
    """SS-MAE pretraining model: spatial MAE + spectral MAE on the same patches, losses summed.

    ``forward`` returns a ``ReconstructionOutput`` with ``loss={"loss": spatial + spectral,
    "spatial": …, "spectral": …, "baseline_loss": …}`` (the two branches' mean-of-visible baselines, summed) and the spectral branch's reconstruction and per-band mask
    (the branch MRS changes). The builder ``ssmae_base_mae`` continues from an SS-MAE pretraining
    checkpoint (``ckpt_path``). The run switches apply to both branches and their decoders.
    """

    def __init__(
        self,
        bands: str | Sequence[str] | None = None,
        in_chans: int | None = None,
        window_size: int = 7,
        embed_dim: int = 256,
        depth: int = 2,
        num_heads: int = 8,
        pos_embed: str = "sincos",
        nan_policy: str = "error",
        spatial_masking: str = "random",
        spatial_mask_ratio: float = 0.3,
        spatial_masking_options: dict | None = None,
        spectral_masking: str = "random",
        spectral_mask_ratio: float = 0.3,
        spectral_masking_options: dict | None = None,
        decoder_embed_dim: int = 256,
        decoder_depth: int = 2,
        decoder_num_heads: int = 8,
        target_norm: str = "none",
    ) -> None:
        super().__init__()
        spatial, spectral = _branch_encoders(bands, in_chans, window_size, embed_dim, depth, num_heads, pos_embed, nan_policy)
        decoder = {"decoder_embed_dim": decoder_embed_dim, "decoder_depth": decoder_depth,
                   "decoder_num_heads": decoder_num_heads, "target_norm": target_norm}
        self.spatial = SpectralMAE(spatial, spatial_masking, spatial_mask_ratio, spatial_masking_options, **decoder)
        self.spectral = SpectralMAE(spectral, spectral_masking, spectral_mask_ratio, spectral_masking_options, **decoder)
        self.bands, self.window_size = spatial.bands, window_size
        self.encoder_args = {"bands": list(spatial.bands), "window_size": window_size, "embed_dim": embed_dim,
                             "depth": depth, "num_heads": num_heads, "pos_embed": pos_embed, "nan_policy": nan_policy}

    @property
    def uses_progress(self) -> bool:
        return self.spatial.uses_progress or self.spectral.uses_progress

    def to_encoder(self) -> SSMAEEncoder:
        """The two encoders as a backbone (:class:`SSMAEEncoder`) of the same architecture, with these weights."""
        encoder = SSMAEEncoder(**self.encoder_args)
        encoder.spatial.load_state_dict(self.spatial.encoder.state_dict())
        encoder.spectral.load_state_dict(self.spectral.encoder.state_dict())
        return encoder

    def card_masking(self) -> tuple[str | None, float | None]:
        masking = ", ".join(
            f"{name} {branch.masking_name} ({branch.masking.mask_ratio:g})"
            for name, branch in (("spatial", self.spatial), ("spectral", self.spectral))
        )
        return masking, None

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, progress: float | None = None, **kwargs
    ) -> ReconstructionOutput:
        spatial = self.spatial(x, generator=generator, progress=progress)
        spectral = self.spectral(x, generator=generator, progress=progress)
        loss_spatial, loss_spectral = spatial.loss["loss"], spectral.loss["loss"]
        baseline = spatial.loss["baseline_loss"] + spectral.loss["baseline_loss"]
        return ReconstructionOutput(
            loss={"loss": loss_spatial + loss_spectral, "spatial": loss_spatial, "spectral": loss_spectral,
                  "baseline_loss": baseline},
            pred=spectral.pred,
            mask=spectral.mask,
        )

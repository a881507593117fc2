"""Mining Redundant Spectra (MRS): mask a random band together with the bands most similar to it.

Per sample: draw an anchor band group ``a`` at random; compute the cosine similarity of every
group's flattened values to ``a``'s; mask ``a`` and the most similar groups until the mask ratio
is met, so ``max(1, floor(G·(1 − R)))`` groups stay visible. With one band per group (the
SS-MAE spectral branch, ``spectral_patch_size: 1``) this is the paper's band-level MRS; with cube
tokens (S2MAE, groups of ``t`` bands) it is the group-level variant: whole spectral groups, all
their grid cells, are masked by group similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from terratorch_specmae.bands import KNOWN_BANDS, check_unique_bands
from terratorch_specmae.masking.base import MaskingStrategy, TokenMask, mask_from_scores, num_visible
from terratorch_specmae.validity import valid_values

if TYPE_CHECKING:
    from terratorch_specmae.layers.tokenizer import TokenGrid


def cosine_similarity_to(vectors: torch.Tensor, anchor: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Cosine similarity ``[B, G]`` of ``vectors`` ``[B, G, L]`` to ``vectors[b, anchor[b]]``.

    A zero vector has no direction: its similarity is 0 (never NaN), also to itself.
    """
    vectors = vectors.float()
    reference = vectors[torch.arange(vectors.shape[0], device=vectors.device), anchor]  # [B, L]
    dots = torch.einsum("bgl,bl->bg", vectors, reference)
    norms = vectors.norm(dim=-1) * reference.norm(dim=-1, keepdim=True)
    return torch.where(norms > eps, dots / norms.clamp(min=eps), 0.0)


class RedundantSpectraMasking(MaskingStrategy):
    """MRS (IGARSS 2024): the anchor group and its most similar groups are masked together.

    ``similarity="cosine"`` (the paper's) compares the values the model sees (after the
    datamodule's normalisation); in a homogeneous patch every band is nearly constant and all
    cosines approach 1, so ``"correlation"`` (each group's vector centred first: Pearson
    correlation) is offered to rank by how bands co-vary inside the patch. Ties in similarity
    are broken at random. ``mask_auxiliary=False`` keeps auxiliary channels (SAR,
    LiDAR: bands whose ``Band.modality`` is not optical) out of the draw: never anchors, never
    masked; a group holding one is auxiliary. Needs at least two spectral groups.
    """

    min_spectral_groups = 2

    SIMILARITIES = ("cosine", "correlation")

    def __init__(
        self, bands: Sequence[str], mask_ratio: float = 0.9, mask_auxiliary: bool = True, similarity: str = "cosine"
    ) -> None:
        super().__init__(mask_ratio)
        if similarity not in self.SIMILARITIES:
            raise ValueError(f"similarity must be one of {self.SIMILARITIES}, got {similarity!r}.")
        self.similarity = similarity
        self.bands = tuple(bands)
        check_unique_bands(self.bands)  # band names, not resolve_bands: a model built from in_chans has band_0 …
        self.mask_auxiliary = mask_auxiliary
        self.auxiliary = torch.tensor([KNOWN_BANDS[b].auxiliary if b in KNOWN_BANDS else False for b in self.bands])
        self._eligible_on: dict[tuple, torch.Tensor] = {}  # made on a GPU once, not copied there every step

    def eligible_groups(self, grid: TokenGrid, device: torch.device | str = "cpu") -> torch.Tensor:
        """``[G]`` bool on ``device``: groups that may be anchors and be masked."""
        key = (torch.device(device), grid.groups, grid.spectral_patch_size, grid.bands, grid.padded_bands)
        if key not in self._eligible_on:
            if self.mask_auxiliary:
                eligible = torch.ones(grid.groups, dtype=torch.bool)
            else:
                padded = torch.cat([self.auxiliary, self.auxiliary[-1:].expand(grid.padded_bands - grid.bands)])
                eligible = ~padded.reshape(grid.groups, grid.spectral_patch_size).any(dim=1)
            self._eligible_on[key] = eligible.to(device)
        return self._eligible_on[key]

    def check_grid(self, grid: TokenGrid) -> None:
        super().check_grid(grid)
        if grid.bands != len(self.bands):
            raise ValueError(f"Expected a token grid over the {len(self.bands)} bands {list(self.bands)}, got {grid.bands}.")
        eligible = int(self.eligible_groups(grid).sum())
        masked = grid.groups - num_visible(grid.groups, self.mask_ratio)
        if eligible < max(masked, 1):
            raise ValueError(
                f"MRS must mask {masked} of {grid.groups} spectral groups (mask_ratio={self.mask_ratio}), but only "
                f"{eligible} may be masked with mask_auxiliary=False (auxiliary bands: "
                f"{[b for b, a in zip(self.bands, self.auxiliary.tolist(), strict=True) if a]})."
            )

    def rank_groups(
        self, image: torch.Tensor, grid: TokenGrid, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(anchor [B], similarity [B, G], order [B, G])``: groups in masking order, anchor first.

        Ineligible groups come last, ties in similarity in random order.
        """
        b, device = image.shape[0], image.device
        t = grid.spectral_patch_size
        bands = image.float()
        bands = torch.where(valid_values(bands), bands, 0.0)  # NaN, ±inf, nodata sentinels: 0, as nan_policy="fill" feeds them
        if grid.padded_bands != grid.bands:  # repeat the last band, as the tokenizer does
            extra = grid.padded_bands - grid.bands
            bands = torch.cat([bands, bands[:, -1:].expand(-1, extra, -1, -1)], dim=1)
        vectors = bands.reshape(b, grid.groups, t * bands.shape[-2] * bands.shape[-1])
        if self.similarity == "correlation":
            vectors = vectors - vectors.mean(dim=-1, keepdim=True)
        eligible = self.eligible_groups(grid, device)
        draw = torch.rand(b, grid.groups, device=device, generator=generator)
        anchor = torch.where(eligible, draw, -1.0).argmax(dim=1)
        similarity = cosine_similarity_to(vectors, anchor)
        key = similarity.clone()
        key[torch.arange(b, device=device), anchor] = torch.inf  # the anchor is masked first
        key = torch.where(eligible, key, -torch.inf)
        shuffle = torch.rand(b, grid.groups, device=device, generator=generator).argsort(dim=1)  # random tie order
        ranked = torch.sort(key.gather(1, shuffle), dim=1, descending=True, stable=True).indices
        return anchor, similarity, shuffle.gather(1, ranked)

    def __call__(
        self,
        grid: TokenGrid,
        batch_size: int,
        device: torch.device,
        generator: torch.Generator | None = None,
        image: torch.Tensor | None = None,
        **_,
    ) -> TokenMask:
        if image is None:
            raise ValueError("Redundant-spectra masking needs the image batch (image=…) to compare bands.")
        _, similarity, order = self.rank_groups(image, grid, generator)
        # group score: G for the first group in masking order … 1 for the last; visible = lowest
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(grid.groups, device=device).expand_as(order))
        group_score = (grid.groups - rank).float()
        scores = group_score.unsqueeze(-1).expand(-1, -1, grid.cells).reshape(batch_size, grid.num_tokens)
        token_mask = mask_from_scores(scores, num_visible(grid.groups, self.mask_ratio) * grid.cells)
        token_mask.priority = similarity.unsqueeze(-1).expand(-1, -1, grid.cells).reshape(batch_size, grid.num_tokens)
        return token_mask

    def __repr__(self) -> str:
        return (
            f"RedundantSpectraMasking(mask_ratio={self.mask_ratio}, mask_auxiliary={self.mask_auxiliary}, "
            f"similarity={self.similarity!r})"
        )

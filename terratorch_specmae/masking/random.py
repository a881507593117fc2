"""Uniform random masking over all tokens — S2MAE's "random 3D masking" over cube tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from terratorch_specmae.masking.base import TokenMask, mask_from_scores, num_visible

if TYPE_CHECKING:
    from terratorch_specmae.models.tokenizer import TokenGrid


class RandomMasking:
    """Masks ``mask_ratio`` of the tokens of each sample uniformly at random (ratio 0.9 default).

    Over cube tokens every (group, row, col) cube is drawn independently, so a location may
    keep some spectral groups visible and lose others.
    """

    def __init__(self, mask_ratio: float = 0.9) -> None:
        num_visible(1, mask_ratio)  # validates the ratio
        self.mask_ratio = mask_ratio

    def __call__(
        self, grid: TokenGrid, batch_size: int, device: torch.device, generator: torch.Generator | None = None, **_
    ) -> TokenMask:
        scores = torch.rand(batch_size, grid.num_tokens, device=device, generator=generator)
        return mask_from_scores(scores, num_visible(grid.num_tokens, self.mask_ratio))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mask_ratio={self.mask_ratio})"

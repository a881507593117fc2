"""Uniform random masking over tokens: per token (``random``) and over 3D cubes (``cube_random``, S2MAE)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from terratorch_specmae.masking.base import MaskingStrategy, TokenMask, mask_from_scores, num_visible

if TYPE_CHECKING:
    from terratorch_specmae.layers.tokenizer import TokenGrid


class RandomMasking(MaskingStrategy):
    """Masks ``mask_ratio`` of the tokens of each sample uniformly at random (ratio 0.9 default).

    Works with any tokenizer: over 2D patches it is MAE's masking; over cube tokens every
    (group, row, col) cube is drawn independently, so a location may keep some spectral groups
    visible and lose others.
    """

    def __call__(
        self, grid: TokenGrid, batch_size: int, device: torch.device, generator: torch.Generator | None = None, **_
    ) -> TokenMask:
        scores = torch.rand(batch_size, grid.num_tokens, device=device, generator=generator)
        return mask_from_scores(scores, num_visible(grid.num_tokens, self.mask_ratio))


class CubeRandomMasking(RandomMasking):
    """S2MAE's "random 3D masking": cube tokens drawn independently over (band group, row, col).

    The same draw as :class:`RandomMasking`, but it insists on cube tokens (at least two
    spectral groups): asked of a 2D patch tokenizer it is a build-time error rather than a
    silent fall back to per-patch masking.
    """

    min_spectral_groups = 2

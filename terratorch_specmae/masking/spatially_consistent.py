"""Spatially consistent masking: the same grid cells are hidden in every spectral group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from terratorch_specmae.masking.base import MaskingStrategy, TokenMask, mask_from_scores, num_visible

if TYPE_CHECKING:
    from terratorch_specmae.layers.tokenizer import TokenGrid


class SpatiallyConsistentMasking(MaskingStrategy):
    """Masks ``mask_ratio`` of the grid *cells* of each sample, each in all its spectral groups.

    A visible cell keeps all ``G`` of its cube tokens, so ``G · max(1, floor(h·w·(1−r)))``
    tokens stay visible: the model cannot read a hidden band group from another group of the
    same location. With 2D patch tokens (one group) it is plain random masking.
    """

    def __call__(
        self, grid: TokenGrid, batch_size: int, device: torch.device, generator: torch.Generator | None = None, **_
    ) -> TokenMask:
        noise = torch.rand(batch_size, grid.cells, device=device, generator=generator)
        # a cell's rank is its score in every group: distinct across cells, equal within one, so
        # the lowest n_cells·G token scores are exactly n_cells whole cells
        cell_rank = torch.argsort(torch.argsort(noise, dim=1), dim=1).float()
        scores = cell_rank.unsqueeze(1).expand(-1, grid.groups, -1).reshape(batch_size, grid.num_tokens)
        n_cells = num_visible(grid.cells, self.mask_ratio)
        return mask_from_scores(scores, n_cells * grid.groups)

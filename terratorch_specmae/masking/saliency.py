"""Semantic saliency of tokens from spectral-index maps (SIGMAE's SSM).

For the pixels of token ``j`` and indices ``I_1 … I_K``:

* semantic richness ``R_j`` = mean over the pixels of ``Σ_k |I_k|``;
* internal heterogeneity ``H_j`` = ``Σ_k std(I_k)`` over the pixels;
* ``SSM_j = α · norm(R)_j + (1 − α) · norm(H)_j``, ``norm`` a per-image min–max to [0, 1].

Cube tokens of one location share its saliency: the map is per grid cell.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _per_image_minmax(values: torch.Tensor) -> torch.Tensor:
    low = values.amin(dim=1, keepdim=True)
    span = values.amax(dim=1, keepdim=True) - low
    return torch.where(span > 0, (values - low) / span.clamp(min=torch.finfo(values.dtype).tiny), 0.0)


def token_saliency(index_maps: torch.Tensor, patch_size: int, alpha: float = 0.5) -> torch.Tensor:
    """``[B, K, H, W]`` index maps → ``[B, h·w]`` saliency per ``patch_size`` cell (row-major), in [0, 1].

    Cells at the bottom/right edge of an image not divisible by the patch use only their real
    pixels. ``alpha`` weighs richness against heterogeneity.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    if index_maps.ndim != 4:
        raise ValueError(f"Expected index maps [B, K, H, W], got shape {tuple(index_maps.shape)}.")
    b, k, height, width = index_maps.shape
    rows, cols = math.ceil(height / patch_size), math.ceil(width / patch_size)
    pad = (0, cols * patch_size - width, 0, rows * patch_size - height)
    maps = F.pad(index_maps.float(), pad)
    valid = F.pad(index_maps.new_ones(1, 1, height, width, dtype=torch.float32), pad)

    def cells(x: torch.Tensor) -> torch.Tensor:  # [B', K', H, W] → [B', K', cells, p·p]
        x = x.reshape(x.shape[0], x.shape[1], rows, patch_size, cols, patch_size)
        return x.permute(0, 1, 2, 4, 3, 5).reshape(x.shape[0], x.shape[1], rows * cols, patch_size**2)

    values, weight = cells(maps), cells(valid)
    count = weight.sum(dim=-1)  # [1, 1, cells]
    richness = (values.abs().sum(dim=1, keepdim=True) * weight).sum(dim=-1) / count  # [B, 1, cells]
    mean = (values * weight).sum(dim=-1, keepdim=True) / count.unsqueeze(-1)
    std = (((values - mean) ** 2 * weight).sum(dim=-1) / count).sqrt()  # [B, K, cells]
    heterogeneity = std.sum(dim=1)
    return alpha * _per_image_minmax(richness[:, 0]) + (1 - alpha) * _per_image_minmax(heterogeneity)

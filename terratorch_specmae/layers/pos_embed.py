"""Separate spatial (per grid cell) and spectral (per band group) position embeddings."""

from __future__ import annotations

import torch
from timm.layers import resample_abs_pos_embed
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed
from torch import nn

POS_EMBED_KINDS = ("learnable", "sincos", "sincos_3d")


def sincos_1d(length: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """``[length, dim]`` sine-cosine table of positions ``0 … length-1`` (``dim`` even)."""
    omega = 1.0 / temperature ** (torch.arange(dim // 2, dtype=torch.float32) / (dim / 2))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(height: int, width: int, dim: int) -> torch.Tensor:
    """``[height·width, dim]`` sine-cosine table, cells in row-major order (``dim`` divisible by 4)."""
    return build_sincos2d_pos_embed([height, width], dim=dim)


class SpatialSpectralPosEmbed(nn.Module):
    """Position embedding of a (group, row, col) token grid, returned as ``[1, G·h·w, D]``.

    ``kind``:

    * ``"learnable"`` (S2MAE's default): a learnable spatial table ``[h·w, D]`` and a learnable
      spectral table ``[G, D]``, summed per token; initialised from the sin-cos tables. For
      another image size the spatial table is resampled bicubically.
    * ``"sincos"``: the same two tables, fixed sin-cos (the paper's "spatial-spectral sin-cos").
    * ``"sincos_3d"``: one fixed joint table whose channels are split ¾ spatial (2D sin-cos) and
      ¼ spectral (1D sin-cos), concatenated (our reading of the paper's "vanilla sin-cos").
    """

    def __init__(self, dim: int, grid_size: tuple[int, int], groups: int, kind: str = "learnable") -> None:
        super().__init__()
        if kind not in POS_EMBED_KINDS:
            raise ValueError(f"pos_embed must be one of {POS_EMBED_KINDS}, got {kind!r}.")
        if kind == "sincos_3d":
            self.spectral_dim = dim // 4
            if dim % 16:
                raise ValueError(f"pos_embed='sincos_3d' needs an embedding width divisible by 16, got {dim}.")
        elif dim % 4:
            raise ValueError(f"pos_embed={kind!r} needs an embedding width divisible by 4, got {dim}.")
        self.dim, self.kind, self.groups = dim, kind, groups
        self.grid_size = tuple(grid_size)
        if kind == "learnable":
            self.spatial = nn.Parameter(sincos_2d(*self.grid_size, dim)[None])
            self.spectral = nn.Parameter(sincos_1d(groups, dim)[None])
        else:
            self.register_buffer("fixed", self._fixed_table(*self.grid_size), persistent=False)

    def _fixed_table(self, height: int, width: int) -> torch.Tensor:
        if self.kind == "sincos":
            spatial, spectral = sincos_2d(height, width, self.dim), sincos_1d(self.groups, self.dim)
            return (spectral[:, None, :] + spatial[None, :, :]).reshape(1, -1, self.dim)
        spatial = sincos_2d(height, width, self.dim - self.spectral_dim)
        spectral = sincos_1d(self.groups, self.spectral_dim)
        table = torch.cat(
            [spectral[:, None, :].expand(-1, height * width, -1), spatial[None, :, :].expand(self.groups, -1, -1)],
            dim=-1,
        )
        return table.reshape(1, -1, self.dim)

    def forward(self, height: int, width: int) -> torch.Tensor:
        if self.kind != "learnable":
            if (height, width) == self.grid_size:
                return self.fixed
            return self._fixed_table(height, width).to(self.fixed.device)
        spatial = resample_abs_pos_embed(
            self.spatial, new_size=[height, width], old_size=list(self.grid_size), num_prefix_tokens=0
        )
        return (self.spectral[:, :, None, :] + spatial[:, None, :, :]).reshape(1, -1, self.dim)

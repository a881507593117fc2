"""Spatial-spectral cube tokens: ``[B, C, H, W]`` → ``[B, G·h·w, D]`` (S2MAE)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BAND_PADDINGS = ("replicate", "zero")


@dataclass(frozen=True)
class TokenGrid:
    """Layout of a token sequence: ``groups`` spectral groups × ``height`` × ``width`` cells.

    Tokens are ordered (group, row, col). ``bands`` and ``image_size`` are the real input's;
    the tokenizer pads them up to ``groups·t`` bands and ``(height·p, width·p)`` pixels.
    """

    groups: int
    height: int
    width: int
    bands: int
    image_size: tuple[int, int]
    spectral_patch_size: int
    patch_size: int

    @property
    def num_tokens(self) -> int:
        return self.groups * self.height * self.width

    @property
    def cells(self) -> int:
        return self.height * self.width

    @property
    def padded_bands(self) -> int:
        return self.groups * self.spectral_patch_size

    @property
    def padded_size(self) -> tuple[int, int]:
        return self.height * self.patch_size, self.width * self.patch_size

    @property
    def pixels_per_token(self) -> int:
        return self.spectral_patch_size * self.patch_size * self.patch_size


def patchify(x: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """``[B, G·t, h·p, w·p]`` → ``[B, G·h·w, t·p·p]``, tokens in (group, row, col) order."""
    b = x.shape[0]
    t, p = grid.spectral_patch_size, grid.patch_size
    x = x.reshape(b, grid.groups, t, grid.height, p, grid.width, p)
    return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(b, grid.num_tokens, grid.pixels_per_token)


def unpatchify(tokens: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``[B, G·h·w, t·p·p]`` → ``[B, G·t, h·p, w·p]``."""
    b = tokens.shape[0]
    t, p = grid.spectral_patch_size, grid.patch_size
    x = tokens.reshape(b, grid.groups, grid.height, grid.width, t, p, p)
    return x.permute(0, 1, 4, 2, 5, 3, 6).reshape(b, grid.padded_bands, *grid.padded_size)


class CubeTokenizer(nn.Module):
    """Embeds non-overlapping ``t×p×p`` cubes of the image viewed as ``[B, 1, C, H, W]``.

    The projection is stored as ``Conv3d(1, D, (t, p, p), stride=(t, p, p))`` (the paper's
    layer, and the layout of public cube checkpoints) but computed as one matmul over
    :func:`patchify`-ed cubes, which is the same operation and faster on CPU.

    Sizes that do not divide: the band axis is padded up to a multiple of ``t`` by repeating
    the last band (``band_padding="replicate"``) or with zeros (``"zero"``); rows and columns
    are padded at the bottom/right by repeating the edge pixels. Callers crop back with
    ``grid.bands`` / ``grid.image_size``, and the MAE leaves padded pixels out of its loss.
    """

    def __init__(
        self,
        num_bands: int,
        embed_dim: int,
        patch_size: int = 8,
        spectral_patch_size: int = 3,
        band_padding: str = "replicate",
    ) -> None:
        super().__init__()
        for name, value in (("patch_size", patch_size), ("spectral_patch_size", spectral_patch_size)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
        if patch_size < 1 or spectral_patch_size < 1:
            raise ValueError(
                f"patch_size and spectral_patch_size must be >= 1, got {patch_size} and {spectral_patch_size}."
            )
        if spectral_patch_size > num_bands:
            raise ValueError(
                f"spectral_patch_size={spectral_patch_size} is larger than the {num_bands} input bands; "
                f"use spectral_patch_size <= {num_bands} (spectral_patch_size={num_bands} gives 2D patch tokens)."
            )
        if band_padding not in BAND_PADDINGS:
            raise ValueError(f"band_padding must be one of {BAND_PADDINGS}, got {band_padding!r}.")
        self.num_bands = num_bands
        self.patch_size = patch_size  # TerraTorch pads inputs to a multiple of a module's `patch_size`
        self.spectral_patch_size = spectral_patch_size
        self.groups = math.ceil(num_bands / spectral_patch_size)
        self.band_padding = band_padding
        self.proj = nn.Conv3d(
            1, embed_dim, (spectral_patch_size, patch_size, patch_size), stride=(spectral_patch_size, patch_size, patch_size)
        )

    def grid(self, height: int, width: int) -> TokenGrid:
        return TokenGrid(
            groups=self.groups,
            height=math.ceil(height / self.patch_size),
            width=math.ceil(width / self.patch_size),
            bands=self.num_bands,
            image_size=(height, width),
            spectral_patch_size=self.spectral_patch_size,
            patch_size=self.patch_size,
        )

    def pad(self, x: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
        """Pad ``[B, C, H, W]`` to ``[B, G·t, h·p, w·p]`` (see class docstring)."""
        extra_bands = grid.padded_bands - grid.bands
        if extra_bands:
            if self.band_padding == "replicate":
                fill = x[:, -1:].expand(-1, extra_bands, -1, -1)
            else:
                fill = x.new_zeros(x.shape[0], extra_bands, *x.shape[2:])
            x = torch.cat([x, fill], dim=1)
        pad_h = grid.padded_size[0] - grid.image_size[0]
        pad_w = grid.padded_size[1] - grid.image_size[1]
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return x

    def embed_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """``[B, N, t·p·p]`` cube pixels → ``[B, N, D]`` embeddings."""
        return F.linear(patches, self.proj.weight.flatten(1), self.proj.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, TokenGrid]:
        grid = self.grid(*x.shape[-2:])
        return self.embed_patches(patchify(self.pad(x, grid), grid)), grid

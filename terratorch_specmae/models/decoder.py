"""The light MAE decoder: sees every token (mask tokens inserted) and predicts each token's pixels."""

from __future__ import annotations

from functools import partial

import torch
from timm.models.vision_transformer import Block
from torch import nn

from terratorch_specmae.layers.attention import KernelAttention
from terratorch_specmae.layers.pos_embed import SpatialSpectralPosEmbed
from terratorch_specmae.layers.tokenizer import TokenGrid
from terratorch_specmae.layers.tokens import gather_tokens, scatter_mask
from terratorch_specmae.models.encoder import init_weights
from terratorch_specmae.models.run_switches import BlockSwitches, run_block


class MAEDecoder(BlockSwitches, nn.Module):
    """Transformer decoder (S2MAE: depth 4, width 512, 16 heads) with spatial+spectral positions.

    ``pos_embed``: ``"sincos"`` (fixed, default) or ``"learnable"`` (SpectralGPT's decoder; its
    converted checkpoints need it), or ``"sincos_3d"``.

    ``forward`` takes the encoded visible tokens and returns ``[B, N, t·p·p]`` pixel predictions
    for all ``N`` tokens (the prediction head is ``Linear(width, t·p·p)``) — or, given
    ``ids_decode`` ``[B, K]``, runs the blocks on those ``K`` tokens only and returns
    ``[B, K, t·p·p]`` (the reduced-computation mode: dropped mask tokens cost nothing).

    Run switches (activation checkpointing, compiled blocks, the CPU attention kernel):
    :class:`~terratorch_specmae.models.run_switches.BlockSwitches`.

    Initialised as MAE initialises its decoder: every ``nn.Linear`` (embedding, attention, MLP,
    prediction head) xavier-uniform with zero bias, LayerNorms 1/0, the mask token N(0, 0.02²).
    """

    def __init__(
        self,
        encoder_dim: int,
        grid_size: tuple[int, int],
        groups: int,
        pixels_per_token: int,
        embed_dim: int = 512,
        depth: int = 4,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        pos_embed: str = "sincos",
        layer_norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"decoder_embed_dim={embed_dim} must be divisible by decoder_num_heads={num_heads}.")
        self.embed = nn.Linear(encoder_dim, embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = SpatialSpectralPosEmbed(embed_dim, grid_size, groups, kind=pos_embed)
        norm_layer = partial(nn.LayerNorm, eps=layer_norm_eps)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer, attn_layer=KernelAttention)
            for _ in range(depth)
        )
        self.norm = norm_layer(embed_dim)
        self.pred = nn.Linear(embed_dim, pixels_per_token)
        self.apply(init_weights)  # as the encoder (MAE): xavier-uniform Linear, zero bias, LayerNorm 1/0
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(
        self,
        visible: torch.Tensor,
        ids_restore: torch.Tensor,
        grid: TokenGrid,
        ids_decode: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = scatter_mask(self.embed(visible), self.mask_token, ids_restore)
        x = x + self.pos_embed(grid.height, grid.width).to(x.dtype)
        if ids_decode is not None:
            x = gather_tokens(x, ids_decode)
        for block in self.blocks:
            x = run_block(block, x, self.grad_checkpointing)
        return self.pred(self.norm(x))

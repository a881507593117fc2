"""The spectral ViT encoder: cube tokenizer → position embeddings → transformer blocks.

Used as a TerraTorch backbone (returns the hidden states of ``out_indices``) and as the
encoder of :class:`~terratorch_specmae.models.mae.SpectralMAE` (sees only visible tokens).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import partial

import torch
from timm.models.vision_transformer import Block
from torch import nn

from terratorch_specmae.bands import resolve_bands
from terratorch_specmae.layers.attention import KernelAttention
from terratorch_specmae.layers.pos_embed import SpatialSpectralPosEmbed
from terratorch_specmae.layers.tokenizer import CubeTokenizer, TokenGrid
from terratorch_specmae.models.hub_mixin import HubMixin
from terratorch_specmae.models.run_switches import BlockSwitches, run_block
from terratorch_specmae.validity import invalid_input_message, valid_values
from terratorch_specmae.variants import size_of, variant_name

FOLD_MODES = ("concat", "mean", "none")
NAN_POLICIES = ("error", "fill")


def fold_spectral_groups(tokens: torch.Tensor, groups: int, mode: str = "concat") -> torch.Tensor:
    """Fold cube tokens ``[B, G·h·w, D]`` into one token per grid cell.

    ``"concat"`` → ``[B, h·w, G·D]`` (group-major channels), ``"mean"`` → ``[B, h·w, D]``,
    ``"none"`` returns the tokens unchanged.
    """
    if mode == "none":
        return tokens
    b, n, d = tokens.shape
    if n % groups:
        raise ValueError(f"Cannot fold {n} tokens into {groups} spectral groups: {n} is not a multiple of {groups}.")
    per_group = tokens.reshape(b, groups, n // groups, d)
    if mode == "mean":
        return per_group.mean(dim=1)
    if mode == "concat":
        return per_group.permute(0, 2, 1, 3).reshape(b, n // groups, groups * d)
    raise ValueError(f"fold must be one of {FOLD_MODES}, got {mode!r}.")


class OutChannels(list):
    """``out_channels`` of the encoder: one width per output (per block of ``out_indices``), as TerraTorch's
    backbone contract asks, and an index out of range is an error that names the encoder's depth.

    TerraTorch's ``SelectIndices`` neck picks ``channel_list[i]`` for each of its ``indices``; a
    24-block list (``[5, 11, 17, 23]``, Prithvi-300M's) on a 12-block encoder failed there with a
    bare ``list index out of range``. TerraTorch copies the list with ``.copy()`` before its necks
    see it, so the copy keeps this class.
    """

    def __init__(self, widths: Sequence[int], blocks: Sequence[int], depth: int) -> None:
        super().__init__(widths)
        self.blocks, self.depth = list(blocks), depth

    def copy(self) -> OutChannels:
        return OutChannels(self, self.blocks, self.depth)

    def __getitem__(self, index):
        if not isinstance(index, slice):
            index = operator.index(index)  # numpy integers too
            if not -len(self) <= index < len(self):
                raise BlockIndexError(self.describe_index_error(index))
        return super().__getitem__(index)

    def describe_index_error(self, index: int) -> str:
        n = len(self)
        if self.blocks == list(range(self.depth)):
            outputs = f"one output per block of its {self.depth} blocks"
            quarters = [self.depth * k // 4 - 1 for k in range(1, 5)]
            hint = f"; four evenly spaced blocks, ending with the last, are {quarters}" if self.depth >= 4 else ""
        else:
            outputs = f"{n} outputs, blocks {self.blocks} of its {self.depth} (backbone_out_indices)"
            hint = "; or leave backbone_out_indices unset, so that index i is block i"
        return (
            f"Index {index} is out of range for this {self.depth}-block encoder, which returns {outputs}: valid "
            f"indices (SelectIndices' indices, out_indices) are 0–{n - 1} or -{n}–-1, 0-based{hint}. A list written for "
            f"another depth (Prithvi-300M's [5, 11, 17, 23] is for 24 blocks) must be changed to this encoder's."
        )


class BlockIndexError(IndexError):
    """An index into an encoder's outputs that the encoder does not have (an ``IndexError``, named)."""


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    size = tuple(size)
    if len(size) != 2:
        raise ValueError(f"img_size must be an int or (height, width), got {size}.")
    return int(size[0]), int(size[1])


class SpectralViT(BlockSwitches, nn.Module, HubMixin):
    """ViT over spatial-spectral cube tokens with separate spatial and spectral position embeddings.

    Args:
        bands: band names or a sensor preset (see :mod:`terratorch_specmae.bands`); default
            the 12 Sentinel-2 L2A bands.
        in_chans: number of bands, when bands are unnamed (or as a check on ``bands``).
        img_size: training image size; other sizes work with ``dynamic_img_size`` (learnable
            spatial table resampled bicubically).
        patch_size: spatial cube side ``p`` (8, the paper's best).
        spectral_patch_size: bands per cube ``t`` (3); ``None`` (or the number of bands) gives
            2D patch tokens spanning all bands, as SIGMAE's ViT uses.
        pos_embed: ``"learnable"`` | ``"sincos"`` | ``"sincos_3d"``.
        out_indices: blocks whose outputs ``forward`` returns, in block order (default: every block).
        fold: how ``forward`` folds the spectral groups of each location — ``"concat"``
            (``G·D`` channels, default), ``"mean"`` (``D``) or ``"none"`` (raw cube tokens
            ``[B, G·h·w, D]``; fold them later with the ``FoldSpectralGroups`` neck).
        nan_policy: ``"error"`` (invalid pixels raise) or ``"fill"`` (invalid pixels become 0 and, in the
            MAE, are left out of the loss and the target statistics). Invalid: NaN, ±inf and
            magnitudes above ``terratorch_specmae.validity.MAX_ABS_VALUE`` (1e15: nodata sentinels).
        layer_norm_eps: epsilon of the blocks' and the final LayerNorms (1e-6, as timm's ViT, MAE
            and SpectralGPT).

    Run switches (activation checkpointing, ``torch.compile`` of the blocks, our CPU attention
    kernel) are methods, not constructor arguments: see :mod:`terratorch_specmae.models.run_switches`.
    Weights are loaded by the builders the registries call (``ckpt_path``, ``pretrained_bands`` …;
    see :func:`terratorch_specmae.weights.load_weights`), or by ``from_pretrained``.

    Band order: weights whose bands are this model's ``bands`` in another order (EuroSAT's
    files keep B8A last) are loaded as they are, and the input's channels are fed to the
    tokenizer in the checkpoint's order (buffer ``band_order``, saved with the weights;
    ``token_bands`` names them). The features are then exactly the checkpoint's on
    correspondingly reordered input — unlike mixing position-table rows, which a cube
    tokenizer, its kernel shared by all groups, cannot express.

    ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` come from :class:`~terratorch_specmae.models.hub_mixin.HubMixin`.
    """

    def __init__(
        self,
        bands: str | Sequence[str] | None = None,
        in_chans: int | None = None,
        img_size: int | Sequence[int] = 128,
        patch_size: int = 8,
        spectral_patch_size: int | None = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        pos_embed: str = "learnable",
        out_indices: Sequence[int] | None = None,
        fold: str = "concat",
        band_padding: str = "replicate",
        nan_policy: str = "error",
        dynamic_img_size: bool = True,
        num_frames: int = 1,
        layer_norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if fold not in FOLD_MODES:
            raise ValueError(f"fold must be one of {FOLD_MODES}, got {fold!r}.")
        if nan_policy not in NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}.")
        if num_frames != 1:
            raise ValueError(
                f"num_frames={num_frames}: this encoder takes one date; for time series or change detection "
                "wrap it with TerraTorch's temporal wrapper (backbone_use_temporal: true)."
            )
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}.")
        self.bands = resolve_bands(bands, in_chans)
        self.img_size = _pair(img_size)
        self.embed_dim, self.depth = embed_dim, depth
        self.fold, self.nan_policy, self.dynamic_img_size = fold, nan_policy, dynamic_img_size

        if spectral_patch_size is None:
            spectral_patch_size = len(self.bands)
        self.tokenizer = CubeTokenizer(len(self.bands), embed_dim, patch_size, spectral_patch_size, band_padding)
        self.patch_size = patch_size
        self.default_grid = self.tokenizer.grid(*self.img_size)
        self.pos_embed = SpatialSpectralPosEmbed(
            embed_dim, (self.default_grid.height, self.default_grid.width), self.tokenizer.groups, pos_embed
        )
        rates = torch.linspace(0, drop_path, depth).tolist()
        norm_layer = partial(nn.LayerNorm, eps=layer_norm_eps)
        self.blocks = nn.ModuleList(
            Block(
                embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, drop_path=rate, norm_layer=norm_layer,
                attn_layer=KernelAttention,
            )
            for rate in rates
        )
        self.norm = norm_layer(embed_dim)
        # input channel feeding each token band: the identity, or the order of a checkpoint whose bands are
        # this model's in another order (set when loading; saved with the weights)
        self.register_buffer("band_order", torch.arange(len(self.bands)), persistent=True)
        self._order = tuple(range(len(self.bands)))  # band_order as Python ints (no device sync per step)
        self.out_indices = self._check_out_indices(out_indices)
        groups = self.tokenizer.groups
        self.out_channels = OutChannels(
            [embed_dim * groups if fold == "concat" else embed_dim] * len(self.out_indices), self.out_indices, depth
        )
        self._last_grid = self.default_grid
        self.apply(init_weights)
        nn.init.xavier_uniform_(self.tokenizer.proj.weight.view(embed_dim, -1))

    @property
    def groups(self) -> int:
        return self.tokenizer.groups

    # ---- band order: the input's channels in the order the weights were trained on
    @property
    def token_bands(self) -> tuple[str, ...]:
        """The bands in the order the tokenizer sees them (``bands`` unless the weights came in another order)."""
        return tuple(self.bands[i] for i in self._order)

    @property
    def _reordered(self) -> bool:
        return self._order != tuple(range(len(self.bands)))

    def set_band_order(self, order) -> None:
        """Feed input channel ``order[k]`` as the ``k``-th band to the tokenizer (a permutation of the bands)."""
        order = torch.as_tensor(order, dtype=torch.long)
        if sorted(order.tolist()) != list(range(len(self.bands))):
            raise ValueError(f"band order {order.tolist()} is not a permutation of the {len(self.bands)} bands.")
        self.band_order.copy_(order.to(self.band_order.device))
        self._order = tuple(order.tolist())

    def to_token_order(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, …]`` in the input's band order → the tokenizer's (the weights') order."""
        return x.index_select(1, self.band_order) if self._reordered else x

    def from_token_order(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_token_order` (reconstructions back to the input's band order)."""
        return x.index_select(1, torch.argsort(self.band_order)) if self._reordered else x

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # weights saved before band orders were recorded are in the model's own order
        state_dict.setdefault(prefix + "band_order", torch.arange(len(self.bands)))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._order = tuple(self.band_order.tolist())

    def _check_out_indices(self, out_indices: Sequence[int] | None) -> list[int]:
        if out_indices is None:
            return list(range(self.depth))
        if not out_indices:
            raise ValueError("out_indices is empty: expected at least one block index.")
        for i in out_indices:
            if not -self.depth <= i < self.depth:
                raise ValueError(
                    f"out_indices {list(out_indices)} out of range for a {self.depth}-block encoder: expected block "
                    f"indices 0–{self.depth - 1} (or -{self.depth}–-1), 0-based."
                )
        return sorted({i % self.depth for i in out_indices})  # outputs come in block order

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate an input batch and return it as float ``[B, C, H, W]``.

        Invalid values (NaN, ±inf, ``|x| > MAX_ABS_VALUE``) raise under ``nan_policy="error"`` and are
        left for the caller to fill otherwise."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"Expected an image tensor [B, C, H, W], got {type(x).__name__}.")
        if x.ndim == 5:  # [B, C, T, H, W] with one date, as TerraTorch temporal datamodules give it
            if x.shape[2] != 1:
                raise ValueError(
                    f"Got {x.shape[2]} dates in a [B, C, T, H, W] input; this encoder takes one date "
                    "(use backbone_use_temporal: true for multi-temporal inputs)."
                )
            x = x[:, :, 0]
        if x.ndim != 4:
            raise ValueError(f"Expected an image tensor [B, C, H, W], got shape {tuple(x.shape)}.")
        if x.shape[1] != len(self.bands):
            raise ValueError(
                f"Expected {len(self.bands)} bands {list(self.bands)}, got {x.shape[1]} channels "
                f"(input shape {tuple(x.shape)})."
            )
        height, width = x.shape[-2:]
        if height < self.patch_size or width < self.patch_size:
            raise ValueError(f"Image {height}×{width} is smaller than one {self.patch_size}×{self.patch_size} patch.")
        if not self.dynamic_img_size and (height, width) != self.img_size:
            raise ValueError(
                f"Expected images of {self.img_size[0]}×{self.img_size[1]} pixels, got {height}×{width} "
                "(set dynamic_img_size=True to accept other sizes)."
            )
        if not x.is_floating_point():
            x = x.float()  # integers hold no NaN or inf, but int32/int64 can hold nodata sentinels beyond 1e15
        elif x.dtype == torch.float64 and self.tokenizer.proj.weight.dtype != torch.float64:
            x = x.to(self.tokenizer.proj.weight.dtype)  # float64 arrays (numpy's default) in the weights' precision
        # data-dependent: skipped inside compiled code (no graph break)
        if self.nan_policy == "error" and not torch.compiler.is_compiling() and not valid_values(x).all():
            raise ValueError(invalid_input_message(x, self.bands))
        return x

    def fill_nan(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Under ``nan_policy="fill"``: invalid pixels (NaN, ±inf, ``|x| > MAX_ABS_VALUE``) set to 0, and
        the mask of valid pixels; else ``(x, None)``."""
        if self.nan_policy != "fill":
            return x, None
        valid = valid_values(x)
        return x.masked_fill(~valid, 0.0), valid

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, TokenGrid]:
        """Validated input → position-embedded cube tokens ``[B, G·h·w, D]`` and their grid.

        With ``nan_policy="fill"`` invalid pixels (NaN, ±inf, nodata sentinels) enter as 0."""
        x, _ = self.fill_nan(self.check_input(x))
        tokens, grid = self.tokenizer(self.to_token_order(x))
        return tokens + self.pos_embed(grid.height, grid.width).to(tokens.dtype), grid

    def forward_blocks(self, tokens: torch.Tensor, out_indices: Sequence[int]) -> list[torch.Tensor]:
        """Run the blocks; return the hidden states after each block in ``out_indices``.

        The last block's output is layer-normed (it is the encoder output)."""
        outputs = []
        last = max(out_indices)
        for i, block in enumerate(self.blocks[: last + 1]):
            tokens = run_block(block, tokens, self.grad_checkpointing)
            if i in out_indices:
                outputs.append(self.norm(tokens) if i == self.depth - 1 else tokens)
        return outputs

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Embedded tokens ``[B, N, D]`` (any subset, e.g. the visible ones) → the encoder's output:
        every block, then the final norm."""
        return self.forward_blocks(tokens, [self.depth - 1])[0]

    def forward(self, x: torch.Tensor, **kwargs) -> list[torch.Tensor]:
        """Hidden states of ``out_indices``, folded per ``fold`` (batch extras TerraTorch passes are unused)."""
        tokens, grid = self.embed(x)
        self._last_grid = grid
        outputs = self.forward_blocks(tokens, self.out_indices)
        return [fold_spectral_groups(out, grid.groups, self.fold) for out in outputs]

    def prepare_features_for_image_model(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Folded tokens → ``[B, C', h, w]`` maps (TerraTorch calls this when no neck is configured)."""
        grid = self._last_grid
        maps = []
        for tokens in features:
            tokens = fold_spectral_groups(tokens, grid.groups, "mean") if self.fold == "none" else tokens
            maps.append(tokens.transpose(1, 2).reshape(tokens.shape[0], -1, grid.height, grid.width))
        return maps

    # ---- Hub publishing (HubMixin)
    def hub_config(self) -> dict:
        return {**super().hub_config(), "img_size": list(self.img_size), "out_indices": list(self.out_indices)}

    @classmethod
    def _kwargs_from_config(cls, config: dict, passed: dict) -> dict:
        if isinstance(config.get("encoder"), dict):  # the config of a published MAE: take its encoder
            config = config["encoder"]
        return super()._kwargs_from_config(config, passed)

    def family_tag(self) -> str:
        return "s2mae" if self.tokenizer.spectral_patch_size < len(self.bands) else "sigmae"

    def card_summary(self) -> str:
        tokens = (
            f"{self.tokenizer.spectral_patch_size}×{self.patch_size}×{self.patch_size} spatial-spectral cube tokens"
            if self.family_tag() == "s2mae"
            else f"{self.patch_size}×{self.patch_size} patch tokens over all bands"
        )
        return f"A spectral ViT encoder over {tokens}, with separate spatial and spectral position embeddings."

    def card_architecture(self) -> str:
        return f": width {self.embed_dim}, {self.depth} blocks, {self.blocks[0].attn.num_heads} heads"

    def card_variant(self) -> str:
        size = size_of(self.embed_dim, self.depth)
        if size:
            return variant_name(self.family_tag(), size)
        heads = self.blocks[0].attn.num_heads
        return (
            f"{self.family_tag()}_vit_base  # with backbone_embed_dim: {self.embed_dim}, "
            f"backbone_depth: {self.depth}, backbone_num_heads: {heads}"
        )


def init_weights(module: nn.Module) -> None:
    """MAE's initialisation of a ViT's layers: every ``nn.Linear`` xavier-uniform with zero bias,
    every LayerNorm weight 1 / bias 0 (applied to the encoder and the decoder alike)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)

"""Masked autoencoder over spectral tokens: tokenizer → masking → encoder → decoder → masked-token MSE."""

from __future__ import annotations

import math

import torch
from terratorch.models.model import ReconstructionOutput
from torch import nn

from terratorch_specmae.layers.tokenizer import TokenGrid, patchify, unpatchify
from terratorch_specmae.layers.tokens import TokenMask, gather_tokens
from terratorch_specmae.masking import build_masking
from terratorch_specmae.models.decoder import MAEDecoder
from terratorch_specmae.models.encoder import SpectralViT
from terratorch_specmae.models.hub_mixin import HubMixin
from terratorch_specmae.models.run_switches import CompositeSwitches

TARGET_NORMS = ("minmax", "standardize", "none")
TARGET_STATS = ("all", "visible")


def target_statistics(
    x: torch.Tensor, valid: torch.Tensor | None, mode: str, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-band ``(shift, scale)`` ``[B, C, 1, 1]`` so that the target is ``(x − shift) / scale``.

    ``minmax`` maps each band of each image to [0, 1] (S2MAE's best), ``standardize`` to zero
    mean and unit variance, ``none`` leaves values as they are. Statistics use only ``valid``
    pixels (all pixels when ``valid`` is None); a band with no valid pixel gets (0, 1).
    """
    if mode not in TARGET_NORMS:
        raise ValueError(f"target_norm must be one of {TARGET_NORMS}, got {mode!r}.")
    b, c = x.shape[:2]
    if mode == "none":
        return x.new_zeros(b, c, 1, 1), x.new_ones(b, c, 1, 1)
    x = x.float()
    if valid is None:
        valid = torch.ones_like(x, dtype=torch.bool)
    count = valid.sum(dim=(-2, -1), keepdim=True)
    empty = count == 0
    if mode == "minmax":
        low = torch.where(valid, x, torch.inf).amin(dim=(-2, -1), keepdim=True)
        high = torch.where(valid, x, -torch.inf).amax(dim=(-2, -1), keepdim=True)
        shift, scale = low, high - low + eps
    else:
        n = count.clamp(min=1)
        mean = torch.where(valid, x, 0.0).sum(dim=(-2, -1), keepdim=True) / n
        var = torch.where(valid, (x - mean) ** 2, 0.0).sum(dim=(-2, -1), keepdim=True) / n
        shift, scale = mean, var.sqrt() + eps
    return torch.where(empty, 0.0, shift), torch.where(empty, 1.0, scale)


def masked_mse(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error over the pixels of masked tokens only.

    ``pred``/``target``/``weights`` ``[B, N, P]``, ``mask`` ``[B, N]`` (1 = masked). ``weights``
    (0/1) drop padded or nodata pixels; the mean is over the pixels that remain.
    """
    err = (pred.float() - target.float()) ** 2
    if weights is None:
        return (err.mean(dim=-1) * mask).sum() / mask.sum().clamp(min=1)
    w = weights * mask.unsqueeze(-1)
    return (err * w).sum() / w.sum().clamp(min=1)


class SpectralMAE(CompositeSwitches, nn.Module, HubMixin):
    """Asymmetric masked autoencoder around a :class:`SpectralViT` encoder.

    ``forward`` returns TerraTorch's ``ReconstructionOutput``:

    * ``loss``: ``{"loss": masked MSE, "baseline_loss": …}`` — both in the *target space* (the
      per-image, per-band ``target_norm`` of the input, the space the loss is trained in) over the
      same masked pixels. ``baseline_loss`` is the error of the simplest predictor, "each masked
      pixel = the per-band mean of the image's visible pixels" (detached, for logging): a model
      that does not beat it has learnt nothing spatial or spectral.
    * ``pred``: the reconstruction ``[B, C, H, W]`` in the input's units. The target
      normalisation is undone with statistics of the *visible* pixels only, so pictures and
      metrics never draw on the hidden pixels (a band hidden everywhere, as under spectral-wise
      masking, falls back to its full statistics).
    * ``mask`` ``[B, C, H, W]``: 1 where the pixel's token was masked — per band, because cube
      tokens mask bands separately.

    ``target_stats``: the per-image statistics of ``target_norm`` come from ``"all"`` the image's
    valid pixels (default, S2MAE's per-image normalisation) or from the ``"visible"`` pixels only.
    With ``"all"`` the target depends on the hidden pixels' range (min/max or mean/std), which
    the model must guess from what it sees, while the mean-of-visible baseline computed in target
    space is handed it; with ``"visible"`` the model and the baseline know the same, and the
    reconstruction maps back to input units exactly. ``"visible"`` is fragile where a band's
    visible pixels are (nearly) constant — sea in 8-bit data at mask ratio 0.9: the scale
    collapses and the target explodes (measured: an S2MAE loss stuck near 1 on the Olinda crops;
    see ``benchmarks/RESULTS.md``); ``target_norm: none`` has no per-image statistics at all.

    ``decode_fraction`` < 1 is the reduced-computation mode SIGMAE motivates: in training the
    decoder runs on the visible tokens plus only that fraction of the masked ones — those
    that matter most by the strategy's ``priority`` (saliency masking: the most salient;
    other strategies: a random subset) — and the loss covers those. The other mask tokens
    are dropped from the decoder's sequence, which saves their attention and MLP work. The
    training loss then measures the error on that subset only (under saliency masking the
    hardest tokens, so it reads higher than an all-token loss). In training the output ``mask``
    marks only the decoded masked pixels (the rest get the input as ``pred``). Evaluation and
    prediction decode every token; so that validation and training losses stay comparable,
    ``loss`` in evaluation is computed on the same kind of subset, and ``loss_all_masked`` on
    every masked token.

    ``mask_ratio`` 0 is accepted (to evaluate unmasked); a training-mode forward whose mask hides no
    token raises, as its loss would be undefined.

    ``decoder_pos_embed``: ``"sincos"`` (fixed, default) or ``"learnable"`` (SpectralGPT's).
    The run switches (``set_grad_checkpointing()``, ``compile_blocks()``,
    ``use_cpu_attention_kernel()``) apply to the encoder and the decoder alike. Weights — a
    pretraining checkpoint to continue from, as progressive pretraining does — are loaded by the
    builders (``ckpt_path`` of ``s2mae_vit_*_mae``; see :func:`terratorch_specmae.weights.load_weights`).
    ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` come from
    :class:`~terratorch_specmae.models.hub_mixin.HubMixin`.
    """

    def __init__(
        self,
        encoder: SpectralViT,
        masking: str = "random",
        mask_ratio: float = 0.9,
        masking_options: dict | None = None,
        decoder_embed_dim: int = 512,
        decoder_depth: int = 4,
        decoder_num_heads: int = 16,
        target_norm: str = "minmax",
        target_stats: str = "all",
        decode_fraction: float = 1.0,
        decoder_pos_embed: str = "sincos",
    ) -> None:
        super().__init__()
        if target_norm not in TARGET_NORMS:
            raise ValueError(f"target_norm must be one of {TARGET_NORMS}, got {target_norm!r}.")
        if target_stats not in TARGET_STATS:
            raise ValueError(f"target_stats must be one of {TARGET_STATS}, got {target_stats!r}.")
        if not 0.0 < decode_fraction <= 1.0:
            raise ValueError(f"decode_fraction must be in (0, 1], got {decode_fraction}.")
        self.encoder = encoder
        self.masking = build_masking(masking, bands=encoder.bands, mask_ratio=mask_ratio, **(masking_options or {}))
        self.masking_name = masking
        self._masking_options = dict(masking_options or {})
        self._masking_bands, self._masking_statistics = encoder.token_bands, None
        grid = encoder.default_grid
        self.masking.check_grid(grid)
        self.target_norm, self.target_stats, self.decode_fraction = target_norm, target_stats, decode_fraction
        self.decoder = MAEDecoder(
            encoder_dim=encoder.embed_dim,
            grid_size=(grid.height, grid.width),
            groups=grid.groups,
            pixels_per_token=grid.pixels_per_token,
            embed_dim=decoder_embed_dim,
            depth=decoder_depth,
            num_heads=decoder_num_heads,
            pos_embed=decoder_pos_embed,
            layer_norm_eps=encoder.norm.eps,
        )

    @property
    def bands(self) -> tuple[str, ...]:
        return self.encoder.bands

    @property
    def img_size(self) -> tuple[int, int]:
        return self.encoder.img_size

    # ---- Hub publishing (HubMixin)
    def hub_config(self) -> dict:
        return {**super().hub_config(), "encoder": self.encoder.hub_config()}

    @classmethod
    def _kwargs_from_config(cls, config: dict, passed: dict) -> dict:
        encoder = passed.get("encoder")
        if not isinstance(encoder, nn.Module):  # a dict of encoder options overrides the saved ones
            passed = {**passed, "encoder": SpectralViT(**{**config.get("encoder", {}), **(encoder or {})})}
        return super()._kwargs_from_config(config, passed)

    def family_tag(self) -> str:
        return self.encoder.family_tag()

    def card_summary(self) -> str:
        return (
            f"A masked autoencoder (encoder and decoder, to continue pretraining). Encoder: {self.encoder.card_summary()} "
            f"Decoder: width {self.decoder.embed.out_features}, depth {len(self.decoder.blocks)}."
        )

    def card_architecture(self) -> str:
        return f" around `SpectralViT`{self.encoder.card_architecture()}"

    def card_variant(self) -> str:
        return self.encoder.card_variant()

    def card_masking(self) -> tuple[str | None, float | None]:
        return self.masking_name, self.masking.mask_ratio

    @property
    def uses_progress(self) -> bool:
        """Whether the masking strategy wants the training progress (the task then passes it)."""
        return getattr(self.masking, "uses_progress", False)

    def prepare_input(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, TokenGrid]:
        """What the masking and the encoder see of a batch: the validated image in the weights' band
        order (invalid pixels 0 under ``nan_policy="fill"``), the mask of valid pixels (or None) and
        the token grid. The masking is kept in step with the encoder's band order."""
        x, valid = self.encoder.fill_nan(self.encoder.check_input(x))
        x = self.encoder.to_token_order(x)  # the weights' band order (see SpectralViT); undone on the outputs
        valid = None if valid is None else self.encoder.to_token_order(valid)
        self._follow_band_order()
        return x, valid, self.encoder.tokenizer.grid(*x.shape[-2:])

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, progress: float | None = None, **kwargs
    ) -> ReconstructionOutput:
        """``generator`` fixes the random mask, ``progress`` (0 → 1, from the task) drives curriculum
        masking; other batch entries TerraTorch passes are not used."""
        x, valid, grid = self.prepare_input(x)
        tokenizer = self.encoder.tokenizer
        token_mask = self.masking(grid, x.shape[0], x.device, generator=generator, image=x, progress=progress)
        if self.training and token_mask.ids_keep.shape[1] == grid.num_tokens:
            raise ValueError(
                f"mask_ratio={self.masking.mask_ratio} ({self.masking_name} masking) masks none of the "
                f"{grid.num_tokens} tokens of a {grid.image_size[0]}×{grid.image_size[1]} image: with no masked token "
                "there is nothing to reconstruct and the training loss is undefined. Expected a mask_ratio in (0, 1) "
                "that masks at least one token for training (mask_ratio 0 is for evaluation only)."
            )
        # embed only the visible cubes (10% of them at the default ratio)
        patches = gather_tokens(patchify(tokenizer.pad(x, grid), grid), token_mask.ids_keep)
        pos = self.encoder.pos_embed(grid.height, grid.width).expand(x.shape[0], -1, -1)
        visible = tokenizer.embed_patches(patches) + gather_tokens(pos, token_mask.ids_keep).to(patches.dtype)
        latent = self.encoder.encode(visible)
        ids_decode = self._decode_subset(token_mask, generator) if self.training else None
        pred = self.decoder(latent, token_mask.ids_restore, grid, ids_decode)

        hidden = self._crop(unpatchify(token_mask.mask.unsqueeze(-1).expand(-1, -1, grid.pixels_per_token), grid), grid)
        seen = hidden == 0 if valid is None else (hidden == 0) & valid
        shift, scale = target_statistics(x, valid, self.target_norm)
        # statistics of the pixels the model saw (never the hidden ones); a band hidden everywhere
        # (spectral-wise masking) falls back to its full statistics
        seen_shift, seen_scale = target_statistics(x, seen, self.target_norm)
        no_seen = ~seen.flatten(2).any(dim=-1)[..., None, None]
        seen_shift, seen_scale = torch.where(no_seen, shift, seen_shift), torch.where(no_seen, scale, seen_scale)
        if self.target_stats == "visible":
            shift, scale = seen_shift, seen_scale
        target = patchify(tokenizer.pad((x - shift) / scale, grid), grid)
        weights = self._pixel_weights(valid, grid, x)
        baseline = patchify(tokenizer.pad(self._visible_mean((x - shift) / scale, seen), grid), grid)
        mask = token_mask.mask
        losses = {}
        if ids_decode is None:
            losses["loss"] = masked_mse(pred, target, mask, weights)
            losses["baseline_loss"] = masked_mse(baseline, target, mask, weights)
            if self.decode_fraction < 1.0:  # evaluation: also on the subset training scores, comparably
                subset = self._decode_subset(token_mask, generator)
                losses["loss_all_masked"] = losses["loss"]
                losses["loss"] = self._subset_mse(pred, target, mask, weights, subset)
                losses["baseline_loss"] = self._subset_mse(baseline, target, mask, weights, subset)
        else:
            losses["loss"] = self._subset_mse(pred, target, mask, weights, ids_decode, decoded=True)
            losses["baseline_loss"] = self._subset_mse(baseline, target, mask, weights, ids_decode)
            # tokens left out of the decoder: no prediction (the target stands in) and out of the mask
            pred = target.float().scatter(1, ids_decode.unsqueeze(-1).expand_as(pred), pred.float())
            mask = torch.zeros_like(mask).scatter(1, ids_decode, mask.gather(1, ids_decode))
        losses["baseline_loss"] = losses["baseline_loss"].detach()

        # back to input units with statistics of the pixels the model saw (never the hidden ones)
        reconstruction = self._crop(unpatchify(pred.float(), grid), grid) * seen_scale + seen_shift
        pixel_mask = mask.unsqueeze(-1).expand(-1, -1, grid.pixels_per_token)
        pixel_mask = self._crop(unpatchify(pixel_mask, grid), grid)
        reconstruction, pixel_mask = self.encoder.from_token_order(reconstruction), self.encoder.from_token_order(pixel_mask)
        return ReconstructionOutput(loss=losses, pred=reconstruction, mask=pixel_mask)

    # ---- the masking strategy sees the batch in the tokenizer's band order
    def set_masking_normalization(self, means, stds, source: str = "means/stds") -> None:
        """Hand a strategy that computes on raw values (saliency) the datamodule's per-band
        statistics, given in the input's band order."""
        self._masking_statistics = (list(means), list(stds), source)
        self._masking_bands = None  # re-applied in the tokenizer's order on the next forward
        self._follow_band_order()

    def _follow_band_order(self) -> None:
        """Rebuild the masking strategy for the bands in the order the tokenizer sees them, after
        weights of another band order were loaded (statistics permuted alike)."""
        bands = self.encoder.token_bands
        if bands == self._masking_bands:
            return
        order = [self.encoder.bands.index(b) for b in bands]
        options = dict(self._masking_options)
        for key in ("means", "stds"):
            if options.get(key) is not None:
                options[key] = [options[key][i] for i in order]
        self.masking = build_masking(self.masking_name, bands=bands, mask_ratio=self.masking.mask_ratio, **options)
        self.masking.check_grid(self.encoder.default_grid)
        if self._masking_statistics is not None and getattr(self.masking, "needs_raw_values", False):
            means, stds, source = self._masking_statistics
            self.masking.set_normalization([means[i] for i in order], [stds[i] for i in order], source)
        self._masking_bands = bands

    @staticmethod
    def _visible_mean(target: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """The mean-of-visible baseline: every pixel of a band = the band's mean over the pixels the
        model saw (``seen``), per image; 0 for a band it saw nowhere."""
        seen = seen.float()
        mean = (target.float() * seen).sum(dim=(-2, -1), keepdim=True) / seen.sum(dim=(-2, -1), keepdim=True).clamp(min=1)
        return mean.expand_as(target)

    @staticmethod
    def _subset_mse(
        pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None,
        ids: torch.Tensor, decoded: bool = False,
    ) -> torch.Tensor:
        """Masked MSE over the tokens ``ids`` only (``decoded``: ``pred`` holds just those tokens)."""
        sub_pred = pred if decoded else gather_tokens(pred, ids)
        sub_weights = None if weights is None else gather_tokens(weights, ids)
        return masked_mse(sub_pred, gather_tokens(target, ids), mask.gather(1, ids), sub_weights)

    def _decode_subset(self, token_mask: TokenMask, generator: torch.Generator | None) -> torch.Tensor | None:
        """Sorted ids ``[B, n_visible + k]`` of the visible tokens and the ``k = ceil(f·masked)``
        masked tokens of highest priority; None when every token is decoded."""
        if self.decode_fraction >= 1.0:
            return None
        mask = token_mask.mask.bool()
        n_masked = mask.shape[1] - token_mask.ids_keep.shape[1]
        k = max(1, math.ceil(self.decode_fraction * n_masked - 1e-6))
        priority = token_mask.priority
        if priority is None:
            priority = torch.rand(mask.shape, device=mask.device, generator=generator)
        chosen = torch.where(mask, priority.float(), -torch.inf).topk(k, dim=1).indices
        return torch.cat([token_mask.ids_keep, chosen], dim=1).sort(dim=1).values

    @staticmethod
    def _crop(image: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
        return image[:, : grid.bands, : grid.image_size[0], : grid.image_size[1]]

    @staticmethod
    def _pixel_weights(valid: torch.Tensor | None, grid: TokenGrid, x: torch.Tensor) -> torch.Tensor | None:
        """0/1 weights ``[B, N, t·p·p]`` dropping padded bands, padded pixels and NaN pixels; None if all count."""
        padded = grid.padded_bands != grid.bands or grid.padded_size != grid.image_size
        if valid is None and not padded:
            return None
        w = valid.float() if valid is not None else x.new_ones(x.shape, dtype=torch.float32)
        h, wd = grid.padded_size
        w = nn.functional.pad(w, (0, wd - grid.image_size[1], 0, h - grid.image_size[0], 0, grid.padded_bands - grid.bands))
        return patchify(w, grid)

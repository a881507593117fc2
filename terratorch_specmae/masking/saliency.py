"""Semantic saliency of tokens from spectral-index maps (SIGMAE's SSM).

For the pixels of token ``j`` and indices ``I_1 … I_K``:

* semantic richness ``R_j`` = mean over the pixels of ``Σ_k |I_k|``;
* internal heterogeneity ``H_j`` = ``Σ_k std(I_k)`` over the pixels;
* ``SSM_j = α · norm(R)_j + (1 − α) · norm(H)_j``, ``norm`` a per-image min–max to [0, 1].

Cube tokens of one location share its saliency: the map is per grid cell.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from terratorch_specmae.indices import SpectralIndices, denormalize, require_named_bands
from terratorch_specmae.masking.base import MaskingStrategy, TokenMask, mask_from_scores, num_visible
from terratorch_specmae.masking.curriculum import Curriculum
from terratorch_specmae.validity import MAX_ABS_VALUE

if TYPE_CHECKING:
    from terratorch_specmae.layers.tokenizer import TokenGrid


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
    # NaN/inf (missing) as 0 and huge values bounded, so that squares and sums stay finite: saliency is never NaN
    maps = F.pad(index_maps.float().nan_to_num(0.0, 0.0, 0.0).clamp(-MAX_ABS_VALUE, MAX_ABS_VALUE), pad)
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


class SaliencyMasking(MaskingStrategy):
    """SIGMAE's semantic-saliency-guided dynamic token masking (SSDTM).

    Of the masked budget ``M = N − max(1, floor(N·(1−r)))``, ``round(γ·M)`` tokens are drawn
    by saliency (the least salient with ``order="easy_first"``), the rest uniformly at random.
    How the salient share is drawn (``selection``):

    * ``"gumbel"`` (default): Gumbel-top-k — the tokens of largest ``saliency + temperature·g``,
      ``g`` standard Gumbel noise per token, i.e. a draw without replacement with probabilities
      ∝ ``exp(saliency / temperature)``. Salient tokens are strongly preferred (saliency is in
      [0, 1]: at the default ``temperature=0.1`` the most salient token is e¹⁰ times as likely as
      the least), yet every step draws a new mask, at every γ, and the spectral groups of one
      location (cube tokens) are drawn independently, so S2MAE's random 3D masking is kept.
    * ``"topk"``: the top-k of the saliency plus uniform noise of amplitude ``noise`` (0.01):
      nearly deterministic — at γ = 1 an image gets the same mask at every step.

    γ follows
    :class:`Curriculum` over training progress (``schedule``, ``start``, ``end``, ``gamma_max``).
    Saliency comes from spectral indices (``indices``, by band name) computed on raw values, in
    float32 whatever the batch's dtype: standardised batches are undone first with ``means``/
    ``stds`` — the datamodule's; ``SpectralMAETask`` fills them in from the datamodule when they
    are not given — and ``scale`` turns integers into reflectance. Without them the batch is taken
    as raw values; a batch that looks standardised (more than 1 % negative values) then warns.
    All spectral groups of a location share its saliency; 2D patches and cube tokens both work.

    ``progress=None`` at call time means the end of the curriculum. The returned mask's
    ``priority`` is the noisy saliency of the draw (negated for ``easy_first``), so an MAE that decodes
    only part of the masked tokens (``decode_fraction``) keeps those that matter most.
    """

    uses_progress = True
    needs_raw_values = True  # SpectralMAETask hands it the datamodule's means/stds
    ORDERS = ("hard_first", "easy_first")
    SELECTIONS = ("gumbel", "topk")

    def __init__(
        self,
        bands,
        mask_ratio: float = 0.9,
        indices=("NDVI", "NDWI", "NDBI"),
        means=None,
        stds=None,
        scale: float = 1.0,
        missing_bands: str = "error",
        alpha: float = 0.5,
        selection: str = "gumbel",
        temperature: float = 0.1,
        noise: float = 0.01,
        order: str = "hard_first",
        schedule: str = "linear",
        start: float = 0.0,
        end: float = 1.0,
        gamma_max: float = 1.0,
    ) -> None:
        super().__init__(mask_ratio)
        if order not in self.ORDERS:
            raise ValueError(f"order must be one of {self.ORDERS}, got {order!r}.")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
        if selection not in self.SELECTIONS:
            raise ValueError(f"selection must be one of {self.SELECTIONS}, got {selection!r}.")
        if selection == "gumbel" and not temperature > 0:
            raise ValueError(f"temperature must be > 0 for selection='gumbel', got {temperature}.")
        if (means is None) != (stds is None):
            raise ValueError("Give both means and stds (the datamodule's normalisation) or neither.")
        require_named_bands(bands, indices, "Saliency masking")
        self.indices = SpectralIndices(indices, bands, missing_bands=missing_bands, scale=scale)
        self.means, self.stds = None, None
        self._statistics_on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        if means is not None:
            self.set_normalization(means, stds)
        self._checked_standardised = False
        self.alpha, self.noise, self.order = alpha, noise, order
        self.selection, self.temperature = selection, temperature
        self.curriculum = Curriculum(schedule, start, end, gamma_max)

    def set_normalization(self, means, stds, source: str = "means/stds") -> None:
        """The per-band standardisation the batches carry (undone before computing indices)."""
        means, stds = [float(m) for m in means], [float(s) for s in stds]
        if not len(means) == len(stds) == len(self.indices.bands):
            raise ValueError(
                f"Saliency masking: {source} gives {len(means)} means and {len(stds)} stds; expected "
                f"{len(self.indices.bands)}, one per band {list(self.indices.bands)}."
            )
        if any(s <= 0 for s in stds):
            raise ValueError(f"Saliency masking: {source} has stds <= 0 ({stds}); expected positive values.")
        self.means, self.stds = means, stds
        self._statistics_on = {}  # device → (means, stds) tensors: copied to a GPU once, not every step

    def index_maps(self, image: torch.Tensor) -> torch.Tensor:
        """Index maps ``[B, K, H, W]`` (``self.indices.names`` order) of a batch as the model sees it."""
        if self.means is not None:
            if image.device not in self._statistics_on:
                self._statistics_on[image.device] = tuple(
                    torch.tensor(v, dtype=torch.float32, device=image.device) for v in (self.means, self.stds)
                )
            return self.indices(denormalize(image, *self._statistics_on[image.device]))
        # checked on the first batch only: reading the share back makes the host wait for a GPU
        if not self._checked_standardised and (image < 0).float().mean() > 0.01:
            warnings.warn(
                "Saliency masking computes spectral indices on raw values, but the batch looks standardised "
                f"({float((image < 0).float().mean()):.0%} of values negative) and no means/stds are set: give "
                "masking_options.means/stds (the datamodule's), or train with SpectralMAETask, which takes them "
                "from the datamodule.",
                stacklevel=2,
            )
        self._checked_standardised = True
        return self.indices(image)

    def saliency(self, image: torch.Tensor, patch_size: int) -> torch.Tensor:
        """Per-cell saliency ``[B, h·w]`` of a batch as the model sees it."""
        return token_saliency(self.index_maps(image), patch_size, self.alpha)

    def __call__(
        self,
        grid: TokenGrid,
        batch_size: int,
        device: torch.device,
        generator: torch.Generator | None = None,
        image: torch.Tensor | None = None,
        progress: float | None = None,
        **_,
    ) -> TokenMask:
        if image is None:
            raise ValueError("Saliency masking needs the image batch (image=…) to compute spectral indices.")
        n_visible = num_visible(grid.num_tokens, self.mask_ratio)
        gamma = self.curriculum(1.0 if progress is None else progress)
        n_salient = round(gamma * (grid.num_tokens - n_visible))
        scores = torch.rand(batch_size, grid.num_tokens, device=device, generator=generator)
        cell_saliency = self.saliency(image, grid.patch_size)
        token_saliency_ = cell_saliency.repeat(1, grid.groups)  # tokens are (group, cell) ordered
        signed = -token_saliency_ if self.order == "easy_first" else token_saliency_
        uniform = torch.rand(token_saliency_.shape, device=device, generator=generator)
        if self.selection == "gumbel":
            gumbel = -torch.log(-torch.log(uniform.clamp(1e-12, 1.0 - 1e-7)))
            priority = signed + self.temperature * gumbel
        else:
            priority = signed + self.noise * uniform
        if n_salient:
            chosen = priority.topk(n_salient, dim=1).indices
            scores.scatter_(1, chosen, 2.0)  # above every random score: never among the visible
        token_mask = mask_from_scores(scores, n_visible)
        token_mask.priority = priority
        return token_mask

    def __repr__(self) -> str:
        return (
            f"SaliencyMasking(mask_ratio={self.mask_ratio}, indices={self.indices.names}, order={self.order!r}, "
            f"selection={self.selection!r}, "
            f"curriculum={self.curriculum})"
        )

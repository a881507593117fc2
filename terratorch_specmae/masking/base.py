"""The mask representation and base class shared by every strategy, and index helpers."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import torch

from terratorch_specmae.layers.tokens import TokenMask

if TYPE_CHECKING:
    from terratorch_specmae.layers.tokenizer import TokenGrid


class MaskingStrategy(ABC):
    """Base of the strategies: a mask ratio, a build-time check against the tokenizer, and a call.

    ``uses_progress`` tells the task to pass the training progress; ``min_spectral_groups``
    is the fewest spectral groups per location the strategy needs (2 for strategies that mask
    band groups separately, which 2D patch tokens do not have).

    ``mask_ratio`` is a number in [0, 1). 0 (nothing masked) is accepted here, for evaluating a
    model unmasked, and refused where training starts (``SpectralMAE.forward`` in training mode).
    """

    uses_progress = False
    min_spectral_groups = 1

    def __init__(self, mask_ratio: float = 0.9) -> None:
        self.mask_ratio = check_mask_ratio(mask_ratio)

    def check_grid(self, grid: TokenGrid) -> None:
        """Raise a ``ValueError`` at build time if the strategy cannot mask tokens laid out as ``grid``."""
        if grid.groups < self.min_spectral_groups:
            raise ValueError(
                f"{type(self).__name__} masks spectral groups separately and needs at least "
                f"{self.min_spectral_groups} spectral groups per location, but the tokenizer makes "
                f"{grid.groups} ({grid.bands} bands, spectral_patch_size={grid.spectral_patch_size}): "
                "use cube tokens (spectral_patch_size < number of bands) or the 'random' strategy."
            )

    @abstractmethod
    def __call__(
        self,
        grid: TokenGrid,
        batch_size: int,
        device: torch.device,
        generator: torch.Generator | None = None,
        image: torch.Tensor | None = None,
        progress: float | None = None,
    ) -> TokenMask:
        """The mask of a batch laid out as ``grid`` (``image``: the batch as the model sees it)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mask_ratio={self.mask_ratio})"


def check_mask_ratio(mask_ratio) -> float:
    """``mask_ratio`` as a float; anything but a real number in [0, 1) raises (strings, None and bools too)."""
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, numbers.Real):
        raise ValueError(  # noqa: TRY004 — a ValueError, as for every other bad option value
            f"mask_ratio must be a number in [0, 1), got {mask_ratio!r} of type {type(mask_ratio).__name__}."
        )
    if not 0.0 <= mask_ratio < 1.0:  # NaN fails this too
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}.")
    return float(mask_ratio)


def num_visible(num_tokens: int, mask_ratio: float) -> int:
    """Visible tokens per sample: ``max(1, floor(N·(1−r)))``, robust to float round-off (0.9 → 10% of N)."""
    mask_ratio = check_mask_ratio(mask_ratio)
    return max(1, math.floor(num_tokens * (1.0 - mask_ratio) + 1e-6))


def mask_from_scores(scores: torch.Tensor, n_visible: int) -> TokenMask:
    """Keep the ``n_visible`` tokens of lowest score in each row of ``scores`` ``[B, N]``."""
    order = torch.argsort(scores, dim=1)
    ids_keep = torch.sort(order[:, :n_visible], dim=1).values
    mask = torch.ones_like(scores)
    mask.scatter_(1, ids_keep, 0.0)
    # visible first (ascending index), then masked (ascending index): a stable order
    shuffle = torch.argsort(mask, dim=1, stable=True)
    ids_restore = torch.argsort(shuffle, dim=1)
    return TokenMask(ids_keep=ids_keep, ids_restore=ids_restore, mask=mask)

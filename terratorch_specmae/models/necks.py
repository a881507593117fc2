"""TerraTorch neck that folds unfolded cube tokens into one token per grid cell."""

from __future__ import annotations

import torch
from terratorch.models.necks import Neck
from terratorch.registry import TERRATORCH_NECK_REGISTRY

from terratorch_specmae.models.encoder import FOLD_MODES, fold_spectral_groups


@TERRATORCH_NECK_REGISTRY.register
class FoldSpectralGroups(Neck):
    """``[B, G·h·w, D]`` cube tokens → ``[B, h·w, G·D]`` (``concat``) or ``[B, h·w, D]`` (``mean``).

    Put it first in the neck chain of a backbone built with ``fold: none``, before
    ``ReshapeTokensToImage``; ``groups`` is the backbone's number of spectral groups
    (``ceil(bands / spectral_patch_size)``).
    """

    def __init__(self, channel_list: list[int], groups: int, mode: str = "concat") -> None:
        super().__init__(channel_list)
        if mode not in ("concat", "mean"):
            raise ValueError(f"FoldSpectralGroups mode must be 'concat' or 'mean', got {mode!r} ({FOLD_MODES}).")
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}.")
        self.groups, self.mode = groups, mode

    def forward(self, features: list[torch.Tensor], **kwargs) -> list[torch.Tensor]:
        return [fold_spectral_groups(f, self.groups, self.mode) if f.ndim == 3 else f for f in features]

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        return [c * self.groups if self.mode == "concat" else c for c in channel_list]

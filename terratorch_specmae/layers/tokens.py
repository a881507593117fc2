"""The mask representation and the token gather / scatter that masking and models share."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenMask:
    """Which tokens the encoder sees.

    ``ids_keep`` ``[B, n_visible]``: indices of visible tokens (sorted ascending);
    ``ids_restore`` ``[B, N]``: position of each token in ``cat([visible, masked])`` order;
    ``mask`` ``[B, N]``: 1.0 where the token is masked, 0.0 where visible;
    ``priority`` ``[B, N]`` or None: how much reconstructing each token matters (higher first),
    used when the MAE decodes only part of the masked tokens; None ranks them at random.
    """

    ids_keep: torch.Tensor
    ids_restore: torch.Tensor
    mask: torch.Tensor
    priority: torch.Tensor | None = None


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``tokens[b, ids[b]]`` for ``tokens`` ``[B, N, D]`` and ``ids`` ``[B, K]`` → ``[B, K, D]``."""
    return torch.gather(tokens, 1, ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def scatter_mask(visible: torch.Tensor, mask_token: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
    """Put visible tokens ``[B, K, D]`` back in place, filling the other positions with ``mask_token``."""
    b, k, d = visible.shape
    n = ids_restore.shape[1]
    full = torch.cat([visible, mask_token.to(visible.dtype).expand(b, n - k, d)], dim=1)
    return gather_tokens(full, ids_restore)

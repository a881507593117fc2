"""MAE's optimisation recipe: parameter groups without weight decay, the batch-scaled learning
rate, and linear warmup then cosine decay.

* **No decay** (MAE's ``add_weight_decay``, timm's ``param_groups_weight_decay``): biases, every
  parameter of one dimension (LayerNorm weights and biases), the position tables and the mask
  token get ``weight_decay = 0``; every other parameter (the weight matrices and kernels) gets
  the configured decay.
* **Absolute learning rate** from a base rate: ``lr = base_lr × global_batch / 256`` (MAE's
  linear scaling rule; its ViT recipe uses ``base_lr = 1.5e-4``).
* **Schedule**: ``lr · step / warmup`` for ``step < warmup`` (0 at the first step, as MAE's
  per-iteration schedule), then a half cosine from ``lr`` down to ``min_lr_ratio · lr`` at the
  last optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from torch import nn

# names (or name endings) of parameters that MAE keeps out of weight decay besides biases and 1-d tensors
NO_DECAY_NAMES = ("pos_embed", "mask_token", "cls_token")


def no_weight_decay(name: str, param: nn.Parameter) -> bool:
    """Whether a parameter is kept out of weight decay: biases, norms (1-d), position tables, mask token."""
    if param.ndim <= 1 or name.endswith(".bias"):
        return True
    parts = name.split(".")
    return any(part in NO_DECAY_NAMES or part.startswith("pos_embed") for part in parts)


def param_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]], weight_decay: float
) -> list[dict]:
    """Two AdamW parameter groups — ``weight_decay`` for weight matrices, 0 for the rest — of the
    trainable parameters (frozen ones are left out). Each group records its ``names``."""
    decay, no_decay = {"params": [], "names": []}, {"params": [], "names": []}
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        group = no_decay if no_weight_decay(name, param) else decay
        group["params"].append(param)
        group["names"].append(name)
    groups = []
    if decay["params"]:
        groups.append({**decay, "weight_decay": weight_decay})
    if no_decay["params"]:
        groups.append({**no_decay, "weight_decay": 0.0})
    return groups


def scaled_lr(base_lr: float, global_batch: int) -> float:
    """MAE's absolute learning rate ``base_lr × global_batch / 256``."""
    if base_lr <= 0 or global_batch < 1:
        raise ValueError(f"Expected base_lr > 0 and global_batch >= 1, got base_lr={base_lr}, global_batch={global_batch}.")
    return base_lr * global_batch / 256


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float = 0.0) -> float:
    """The learning-rate multiplier at optimizer step ``step`` (0-based) of ``total_steps``.

    Linear warmup ``step / warmup_steps`` (0 at step 0), then a half cosine from 1 down to
    ``min_lr_ratio`` at the last step ``total_steps``; constant ``min_lr_ratio`` after it.
    """
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}.")
    if warmup_steps > 0 and step < warmup_steps:
        return step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


def warmup_steps_for(
    total_steps: int, max_epochs: int | None, warmup_epochs: float | None, warmup_fraction: float | None
) -> int:
    """Warmup length in optimizer steps, from epochs (needs ``max_epochs``) or a fraction of training."""
    if warmup_epochs is not None and warmup_fraction is not None:
        raise ValueError(
            f"Give warmup_epochs or warmup_fraction, not both (got {warmup_epochs} and {warmup_fraction})."
        )
    if warmup_epochs is not None:
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}.")
        if not max_epochs or max_epochs < 0:
            raise ValueError(
                "warmup_epochs needs trainer.max_epochs to turn epochs into steps; "
                "with trainer.max_steps give warmup_fraction instead."
            )
        return min(total_steps, round(warmup_epochs * total_steps / max_epochs))
    fraction = 0.0 if warmup_fraction is None else warmup_fraction
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {fraction}.")
    return round(fraction * total_steps)

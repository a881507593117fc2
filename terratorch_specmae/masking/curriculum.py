"""Curriculum schedules: how a strategy's difficulty γ grows with training progress."""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("linear", "cosine", "constant")


@dataclass(frozen=True)
class Curriculum:
    """γ(progress): 0 before ``start``, rising to ``gamma_max`` at ``end`` (fractions of training).

    ``linear`` rises in a straight line, ``cosine`` as a half cosine (slow, fast, slow);
    ``constant`` is ``gamma_max`` throughout. Progress is the trainer's step / total steps.
    """

    schedule: str = "linear"
    start: float = 0.0
    end: float = 1.0
    gamma_max: float = 1.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}.")
        if not 0.0 <= self.start < self.end <= 1.0:
            raise ValueError(f"Expected 0 <= start < end <= 1, got start={self.start}, end={self.end}.")
        if not 0.0 <= self.gamma_max <= 1.0:
            raise ValueError(f"gamma_max must be in [0, 1], got {self.gamma_max}.")

    def __call__(self, progress: float) -> float:
        if self.schedule == "constant":
            return self.gamma_max
        t = min(max((progress - self.start) / (self.end - self.start), 0.0), 1.0)
        if self.schedule == "cosine":
            t = (1.0 - math.cos(math.pi * t)) / 2.0
        return self.gamma_max * t

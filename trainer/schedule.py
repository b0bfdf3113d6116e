"""Linear warmup to the peak lr, then a cosine down to min_lr at max_steps (min_lr after it)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CosineSchedule:
    lr: float
    min_lr: float
    warmup_steps: int
    max_steps: int

    def __call__(self, step: int) -> float:
        """The learning rate of optimizer step `step` (0-based)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / (self.warmup_steps + 1)
        if step >= self.max_steps:
            return self.min_lr
        progress = (step - self.warmup_steps) / max(1, self.max_steps - self.warmup_steps)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (self.lr - self.min_lr)

    def state_dict(self) -> dict:
        return asdict(self)

    def differences(self, state: dict) -> list[str]:
        """What a checkpoint's schedule has that this one does not (`lr 0.001 -> 0.0003`)."""
        mine = self.state_dict()
        return [f"{k} {state.get(k)} -> {v}" for k, v in mine.items() if state.get(k) != v]


def warmup_for(warmup_steps: int, max_steps: int) -> tuple[int, str]:
    """The warmup to use and a note when it differs from the configured one.

    A run no longer than its warmup would spend every step below the peak lr (40 steps at the
    default warmup of 200 barely move the loss): the warmup is then cut to a tenth of the run.
    """
    if max_steps > warmup_steps:
        return warmup_steps, ""
    scaled = max_steps // 10
    return scaled, (f"note: max_steps {max_steps} <= warmup_steps {warmup_steps}: warmup scaled down to "
                    f"{scaled} steps (a tenth of the run)")

"""Learning-rate schedules as pure functions of progress (resumable without saved state)."""

from __future__ import annotations

import math


def lr_factor(
    schedule: str, step: int, total: int, warmup: int, epoch_steps: int = 1, decay: float = 0.5
) -> float:
    """Multiplier on the base learning rate at optimizer step `step` (0-based) of `total`.

    `exponential` multiplies it by `decay` at every epoch end (`epoch_steps` steps): the
    schedule long-horizon forecasting baselines are trained with (DLinear, Autoformer)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "exponential":
        return float(decay ** ((step - warmup) // max(1, epoch_steps)))
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "onecycle":  # 0.1 → 1 over the first 25%, then linearly down to zero
        return 0.1 + 0.9 * progress / 0.25 if progress < 0.25 else (1.0 - progress) / 0.75
    raise ValueError(f"unknown schedule {schedule!r}")

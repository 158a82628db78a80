"""The names and formulas of an optimisation recipe that configs refer to: precisions, LR schedules.

Torch-free, so that a config can list the accepted values in ``--help`` without importing torch;
:mod:`freqlat.core.training` turns them into autocast contexts and learning rates.
"""

from __future__ import annotations

import math

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
"""Training precisions: float32, or bf16 / fp16 autocast (fp16 with a gradient scaler)."""

LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")
"""Learning-rate schedules after the linear warm-up."""


def lr_factor(step: int, *, steps: int, warmup: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the base LR at ``step``: linear warm-up, then constant or cosine decay.

    The LR is a pure function of the step, so it needs no state of its own in a checkpoint.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

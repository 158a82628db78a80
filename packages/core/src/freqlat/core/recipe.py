"""The names and formulas of an optimisation recipe that configs refer to: precisions, LR schedules.

Torch-free, so that a config can list the accepted values in ``--help`` without importing torch;
:mod:`freqlat.core.training` turns them into autocast contexts and learning rates.
"""

from __future__ import annotations

import math

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
"""Training precisions: float32, or bf16 / fp16 autocast (fp16 with a gradient scaler)."""

LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine", "lin0")
"""Learning-rate schedules: a linear warm-up, then constant or cosine; or VAR's ``lin0``."""

LIN0_WARMUP_START = 0.005
"""The LR factor at the first step of ``lin0``'s warm-up (FoundationVision/VAR ``--wp0``)."""
LIN0_PLATEAU = 0.05
"""The share of the post-warm-up steps that ``lin0`` holds the peak LR."""


def lr_factor(step: int, *, steps: int, warmup: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the base LR at ``step`` (0-based): linear warm-up over ``warmup`` steps
    from 1 / ``warmup``, then constant or cosine decay to ``min_ratio``; or ``lin0``.

    ``lin0`` is FoundationVision/VAR's (``utils/lr_control.py`` ``lr_wd_annealing``): warm-up
    from :data:`LIN0_WARMUP_START` to 1, the peak for the next :data:`LIN0_PLATEAU` of the
    remaining steps, then linear down to ``min_ratio`` at the last step. The LR is a pure
    function of the step, so it needs no state of its own in a checkpoint.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    if schedule == "lin0":
        return _lin0_factor(step, steps=steps, warmup=warmup, min_ratio=min_ratio)
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _lin0_factor(step: int, *, steps: int, warmup: int, min_ratio: float) -> float:
    if step < warmup:
        return LIN0_WARMUP_START + (1 - LIN0_WARMUP_START) * step / warmup
    passed = (step - warmup) / max(1, steps - 1 - warmup)
    if passed < LIN0_PLATEAU:
        return 1.0
    return min_ratio + (1 - min_ratio) * (1 - passed) / (1 - LIN0_PLATEAU)


def annealed_weight_decay(step: int, *, steps: int, start: float, end: float) -> float:
    """Weight decay at ``step``: a half cosine from ``start`` (step 0) to ``end`` (the last
    step), as FoundationVision/VAR anneals it (``lr_wd_annealing``); ``start`` if they match."""
    progress = step / max(1, steps - 1)
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))

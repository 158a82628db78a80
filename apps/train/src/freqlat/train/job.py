"""The submitted callable of a training run: checkpointable, resuming from its run directory."""

from __future__ import annotations

from typing import Any

import submitit

from freqlat.core import PreemptionGuard, cleanup, init_distributed
from freqlat.train.config import TokenizerTrainConfig
from freqlat.train.loop import train_tokenizer


class TokenizerTrainingJob(submitit.helpers.Checkpointable):
    """Trains one tokenizer run; the same object runs locally, under torchrun or as a SLURM task.

    Being ``Checkpointable``, on timeout or preemption submitit resubmits it unchanged; the
    :class:`~freqlat.core.PreemptionGuard` makes the loop save at a step boundary first, and every
    start resumes from the run directory's latest checkpoint.
    """

    def __init__(self, config: TokenizerTrainConfig) -> None:
        self.config = config

    def __call__(self) -> dict[str, Any]:
        guard = PreemptionGuard()
        ctx = init_distributed(use_cuda=self.config.launch_options().use_cuda)
        try:
            return train_tokenizer(self.config, ctx, guard)
        finally:
            cleanup()

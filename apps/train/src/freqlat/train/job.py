"""The submitted callables of freqlat-train: checkpointable, resuming from their directories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import submitit

from freqlat.core import PreemptionGuard, cleanup, init_distributed
from freqlat.train.cache_latents import cache_latents
from freqlat.train.generator_loop import train_generator
from freqlat.train.loop import train_tokenizer


class RunJob(submitit.helpers.Checkpointable):
    """One run of ``run(config, ctx, guard)``; the same object runs locally, under torchrun or
    as a SLURM task.

    Being ``Checkpointable``, on timeout or preemption submitit resubmits it unchanged; the
    :class:`~freqlat.core.PreemptionGuard` makes the loop save at a step boundary first, and every
    start resumes from the run's directory.
    """

    run: ClassVar[Callable[..., dict[str, Any]]]

    def __init__(self, config: Any) -> None:
        """``config``: the run's resolved config (it has ``launch_options()``)."""
        self.config = config

    def __call__(self) -> dict[str, Any]:
        guard = PreemptionGuard()
        ctx = init_distributed(use_cuda=self.config.launch_options().use_cuda)
        try:
            return type(self).run(self.config, ctx, guard)
        finally:
            cleanup()


class TokenizerTrainingJob(RunJob):
    """Trains one tokenizer run (:func:`freqlat.train.loop.train_tokenizer`)."""

    run = staticmethod(train_tokenizer)


class GeneratorTrainingJob(RunJob):
    """Trains one generator run (:func:`freqlat.train.generator_loop.train_generator`)."""

    run = staticmethod(train_generator)


class CacheLatentsJob(RunJob):
    """Writes (or finishes) one latent cache (:func:`freqlat.train.cache_latents.cache_latents`);
    requeued, it skips the shards already written."""

    run = staticmethod(cache_latents)

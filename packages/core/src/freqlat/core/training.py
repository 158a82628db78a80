"""The harness every freqlat training loop is written over: precision, optimiser steps, resume.

Each kind of training keeps its own short loop (the tokenizer's two-optimiser GAN loop, a
generator's one-optimiser loop); what they share lives here:

- :func:`autocast` and :func:`grad_scaler`: fp32, or bf16 / fp16 autocast (fp16 with a scaler);
- :func:`optimizer_step`: backward, gradient all-reduce of parameters DDP does not wrap,
  clipping, step; :func:`all_reduce_gradients`, :func:`set_learning_rate`;
- :func:`wrap_ddp`: the model under DistributedDataParallel when there are several processes;
- :class:`ThroughputMeter`: images/s per process and the share of time spent waiting for data;
- :class:`RunCheckpoints`: what a run saves, the resume from its latest checkpoint, and the
  save-then-requeue on a preemption signal.

The LR schedule is :func:`freqlat.core.recipe.lr_factor` (torch-free, so configs can name it).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from freqlat.core.checkpoint import Stateful, latest_checkpoint, load_checkpoint, save_checkpoint
from freqlat.core.distributed import DistributedContext, is_distributed
from freqlat.core.launcher import PreemptionGuard
from freqlat.core.recipe import PRECISIONS

logger = logging.getLogger(__name__)


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (a no-op context for fp32)."""
    _check_precision(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler that is active for fp16 only (a pass-through otherwise)."""
    _check_precision(precision)
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> float:
    """Set every parameter group's LR to ``lr``; returns it."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def all_reduce_gradients(params: Iterable[nn.Parameter]) -> None:
    """Average the gradients of ``params`` over ranks (no-op in a single process).

    For parameters DDP does not wrap (e.g. a loss's own weights): the gradients are flattened
    into one buffer, all-reduced once and copied back; parameters without a gradient are left.
    """
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    params: list[nn.Parameter],
    *,
    shared: Iterable[nn.Parameter] = (),
    grad_clip: float = 0.0,
) -> torch.Tensor | None:
    """Backward ``loss``, average ``shared`` grads over ranks, clip ``params``, step.

    ``shared`` are the optimised parameters DDP does not see (their gradients are averaged
    here); ``grad_clip > 0`` clips the norm over ``params`` after unscaling. Returns the
    gradient norm before clipping, or None without clipping.
    """
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    all_reduce_gradients(shared)
    norm = None
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return norm


def wrap_ddp(
    model: nn.Module, ctx: DistributedContext, *, find_unused_parameters: bool = False
) -> nn.Module:
    """``model`` under DistributedDataParallel with several processes, else ``model`` itself."""
    if ctx.world_size <= 1:
        return model
    kwargs: dict[str, Any] = {"find_unused_parameters": find_unused_parameters}
    if ctx.device.type == "cuda":
        kwargs["device_ids"] = [ctx.device]
    return DistributedDataParallel(model, **kwargs)


class ThroughputMeter:
    """Images/s per process and the share of wall time spent waiting for data.

    Counting starts when the first step of a start has finished, so model building, resuming
    and the first (warm-up) step are left out. Wrap each batch fetch in :meth:`waiting` and call
    :meth:`step_done` after each step; :meth:`interval` gives the values since its last call
    (for the log), :meth:`total` those of the whole start.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.started: float | None = None
        self.steps = 0
        self.waited = 0.0
        self._mark = (0, 0.0, 0.0)  # steps, waited, time at the last interval()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Count the time spent in the ``with`` block as waiting for data."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.started is not None:
                self.waited += time.perf_counter() - start

    def step_done(self) -> None:
        """Mark the end of a step (the first one starts the clock)."""
        if self.started is None:
            self.started = time.perf_counter()
            self._mark = (0, 0.0, self.started)
        else:
            self.steps += 1

    def _since(self, steps: int, waited: float, since: float) -> dict[str, float]:
        elapsed = time.perf_counter() - since
        if self.steps == steps or elapsed <= 0:
            return {}
        return {
            "time/images_per_s": (self.steps - steps) * self.batch_size / elapsed,
            "time/data_wait_fraction": (self.waited - waited) / elapsed,
        }

    def interval(self) -> dict[str, float]:
        """Throughput since the previous call (empty before the first counted step)."""
        if self.started is None:
            return {}
        values = self._since(*self._mark)
        self._mark = (self.steps, self.waited, time.perf_counter())
        return values

    def total(self) -> dict[str, float]:
        """Throughput over every counted step of this start."""
        return {} if self.started is None else self._since(0, 0.0, self.started)


class RunCheckpoints:
    """A run's checkpoints: what is saved, the resume from the latest one, the preemption save.

    ``weights`` go to safetensors files (modules, EMA), ``states`` to ``training_state.pt``
    (optimisers, scalers, the data position); every rank's RNG is always saved. Everything a
    loop needs to continue bit for bit must be in one of them (the LR is a function of the
    step). Under torch.distributed every rank calls every method together.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        weights: Mapping[str, Stateful],
        states: Mapping[str, Stateful],
        keep_last: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.weights = dict(weights)
        self.states = dict(states)
        self.keep_last = keep_last
        self.saved_step: int | None = None

    def resume(self) -> int:
        """Load the latest complete checkpoint, if any, and return its step (0 without one)."""
        latest = latest_checkpoint(self.root)
        if latest is None:
            self.saved_step = 0  # nothing to save before the first step
            return 0
        step = load_checkpoint(latest, weights=self.weights, states=self.states).step
        logger.info("resumed from %s at step %d", latest, step)
        self.saved_step = step
        return step

    def save(self, step: int, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write the checkpoint of ``step`` (atomically; only ``keep_last`` are kept)."""
        path = save_checkpoint(
            self.root,
            step,
            weights=self.weights,
            states=self.states,
            metadata=metadata,
            keep_last=self.keep_last,
        )
        self.saved_step = step
        return path

    def stop_if_requested(
        self,
        guard: PreemptionGuard | None,
        step: int,
        device: torch.device,
        metadata: Callable[[], Mapping[str, Any]],
        before_exit: Callable[[], None] = lambda: None,
    ) -> None:
        """At a step boundary: on a preemption signal, save (unless ``step`` is saved) and requeue.

        Call it before every step. ``metadata()`` is called only when a checkpoint is written;
        ``before_exit()`` closes what the loop holds open (writers, progress bars).
        """
        if guard is None or not guard.should_stop(device):
            return
        if self.saved_step != step:
            self.save(step, metadata())
        before_exit()
        guard.requeue()

"""Run a job in-process or through submitit (debug, local processes, SLURM), and survive preemption.

A *job* is a picklable callable. To be requeued on timeout or preemption it should be
checkpointable in submitit's sense: a ``checkpoint(*args, **kwargs)`` method returning a
``submitit.helpers.DelayedSubmission`` (subclassing ``submitit.helpers.Checkpointable`` gives one
that resubmits the job as it is). A restarted job must resume from its run directory's latest
checkpoint by itself.

Saving in the middle of a training step is unsafe, so :class:`PreemptionGuard` takes submitit's
timeout signal over: the signal only raises a flag, the training loop polls
:meth:`PreemptionGuard.should_stop` at step boundaries, writes its checkpoint, and calls
:meth:`PreemptionGuard.requeue`, which hands over to submitit's own handler (which calls the
job's ``checkpoint()`` and requeues).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit
import torch
import torch.distributed as dist
from submitit.core.job_environment import SignalHandler

from freqlat.core.distributed import get_rank, is_distributed

logger = logging.getLogger(__name__)

LAUNCHERS: tuple[str, ...] = ("local", "local-submitit", "debug", "slurm")
"""Accepted values of :attr:`LaunchOptions.launcher`."""


@dataclass
class LaunchOptions:
    """Where and how a job runs.

    ``launcher``: ``local`` calls the job in this process; ``debug`` uses submitit's
    DebugExecutor (in this process, on ``job.result()``); ``local-submitit`` runs
    ``tasks_per_node`` processes on this machine with submitit's LocalExecutor (real signals and
    requeue, for tests); ``slurm`` submits an sbatch job of ``nodes`` x ``tasks_per_node`` tasks.

    ``tasks_per_node`` None (the default) becomes one task per GPU, at least one, when the options
    are made. A task drives one GPU, so on SLURM a job with GPUs needs exactly one task per GPU;
    a job without GPUs (``gpus_per_node=0``) may run any number of CPU tasks (gloo), each with
    ``cpus_per_task`` CPUs.
    """

    launcher: str = "local"
    nodes: int = 1
    gpus_per_node: int = 1
    tasks_per_node: int | None = None
    cpus_per_task: int = 8
    mem_gb: int | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    timeout_min: int = 24 * 60
    job_name: str = "freqlat"
    max_num_timeout: int = 10
    signal_delay_s: int = 120
    slurm_additional_parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ValueError(f"unknown launcher {self.launcher!r}; choose one of {LAUNCHERS}")
        if self.gpus_per_node < 0:
            raise ValueError(f"gpus_per_node must be non-negative, got {self.gpus_per_node}")
        if self.tasks_per_node is None:
            self.tasks_per_node = max(1, self.gpus_per_node)
        for name in ("nodes", "tasks_per_node", "cpus_per_task", "timeout_min"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if (
            self.launcher == "slurm"
            and self.gpus_per_node
            and self.tasks_per_node != self.gpus_per_node
        ):
            raise ValueError(
                f"tasks_per_node ({self.tasks_per_node}) must equal gpus_per_node "
                f"({self.gpus_per_node}) on SLURM: each task drives one GPU "
                "(more tasks than GPUs need gpus_per_node 0, a CPU job)"
            )

    @property
    def use_cuda(self) -> bool | None:
        """Where the job's processes compute, for :func:`freqlat.core.init_distributed`.

        False when the job has no GPUs (``gpus_per_node=0``: CPU even where CUDA is visible, so a
        CPU job never takes a GPU it was not given); True for a SLURM job with GPUs (a missing
        CUDA is then an error, not a silent CPU run); None for the local launchers with GPUs
        (CUDA where available).
        """
        if self.gpus_per_node == 0:
            return False
        return True if self.launcher == "slurm" else None


def make_executor(options: LaunchOptions, folder: str | os.PathLike[str]) -> submitit.Executor:
    """Build the submitit executor for ``options`` with its logs and pickles under ``folder``.

    For ``slurm`` there are ``tasks_per_node`` tasks per node (one per GPU), each with
    ``cpus_per_task`` CPUs; partition, account, qos and ``slurm_additional_parameters`` (any
    other sbatch option) are passed through.
    """
    folder = Path(folder)
    if options.launcher == "debug":
        return submitit.DebugExecutor(folder)
    if options.launcher == "local-submitit":
        executor = submitit.LocalExecutor(folder, max_num_timeout=options.max_num_timeout)
        executor.update_parameters(
            timeout_min=options.timeout_min,
            tasks_per_node=options.tasks_per_node,
            signal_delay_s=options.signal_delay_s,
        )
        return executor
    if options.launcher == "slurm":
        executor = submitit.AutoExecutor(
            folder, cluster="slurm", slurm_max_num_timeout=options.max_num_timeout
        )
        executor.update_parameters(**slurm_parameters(options))
        return executor
    raise ValueError(f"launcher {options.launcher!r} runs in-process and has no executor")


def slurm_parameters(options: LaunchOptions) -> dict[str, Any]:
    """The AutoExecutor parameters that ``options`` stand for on SLURM."""
    params: dict[str, Any] = {
        "name": options.job_name,
        "nodes": options.nodes,
        "tasks_per_node": options.tasks_per_node,
        "cpus_per_task": options.cpus_per_task,
        "timeout_min": options.timeout_min,
        "slurm_signal_delay_s": options.signal_delay_s,
    }
    if options.gpus_per_node:
        params["gpus_per_node"] = options.gpus_per_node
    if options.mem_gb is not None:
        params["mem_gb"] = options.mem_gb
    if options.partition:
        params["slurm_partition"] = options.partition
    if options.account:
        params["slurm_account"] = options.account
    if options.qos:
        params["slurm_qos"] = options.qos
    if options.slurm_additional_parameters:
        params["slurm_additional_parameters"] = dict(options.slurm_additional_parameters)
    return params


def launch(job: Callable[[], Any], options: LaunchOptions, folder: str | os.PathLike[str]) -> Any:
    """Run ``job`` as ``options`` say.

    ``local`` returns the job's return value; the other launchers return the ``submitit.Job``
    (call ``.result()`` to wait for the value; the DebugExecutor runs the job at that point).
    ``folder`` receives submitit's logs and pickles (e.g. ``<run_dir>/submitit``).
    """
    if options.launcher == "local":
        return job()
    if not hasattr(job, "checkpoint"):
        logger.warning("%r has no checkpoint() method: it will not be requeued on timeout", job)
    executor = make_executor(options, folder)
    submitted = executor.submit(job)
    logger.info("submitted job %s (%s); logs in %s", submitted.job_id, options.launcher, folder)
    return submitted


def _submitit_handler(signum: int) -> Callable[[int, Any], None] | None:
    handler = signal.getsignal(signum)
    owner = getattr(handler, "__self__", None)
    if owner is not None and isinstance(owner, SignalHandler):
        return handler  # type: ignore[return-value]
    return None


class PreemptionGuard:
    """Turns submitit's timeout/preemption signal into a flag checked at step boundaries.

    Create one at the start of the job's ``__call__`` (a second one would find the first one's
    handler instead of submitit's and stay inactive). Outside a submitit job (``local``
    launcher) it does nothing and :meth:`should_stop` stays False. Inside one it replaces
    submitit's handler for the preemption signal (USR2 unless ``SUBMITIT_PREEMPT_SIGNAL`` says
    otherwise) by one that only records the request.
    """

    def __init__(self) -> None:
        self.requested = False
        self._signum: int = submitit.JobEnvironment._usr_sig()
        self._submitit_handler = _submitit_handler(self._signum)
        if self._submitit_handler is not None:
            signal.signal(self._signum, self._on_signal)

    @property
    def active(self) -> bool:
        """True when running inside a submitit job whose signal this guard took over."""
        return self._submitit_handler is not None

    def _on_signal(self, signum: int, frame: Any) -> None:
        logger.warning("received signal %d: will checkpoint and requeue at the next step", signum)
        self.requested = True

    def should_stop(self, device: torch.device | None = None) -> bool:
        """True when any rank has been signalled (a collective call under torch.distributed).

        ``device`` is where the one-element flag lives for the all-reduce (the GPU with NCCL).
        """
        if not is_distributed():
            return self.requested
        flag = torch.tensor([float(self.requested)], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.requested = bool(flag.item() > 0)
        return self.requested

    def requeue(self) -> None:
        """Hand over to submitit once the checkpoint is written: requeue and exit this process.

        On rank 0 submitit's handler calls the job's ``checkpoint()``, requeues the job and exits;
        other ranks exit quietly (the scheduler restarts all tasks).
        """
        if self._submitit_handler is None:
            raise RuntimeError("requeue() needs a submitit job; this process is not in one")
        if get_rank() == 0:
            self._submitit_handler(self._signum, None)
        sys.exit(0)

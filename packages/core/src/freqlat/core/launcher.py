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
from pathlib import Path
from typing import Any

import submitit
import torch
import torch.distributed as dist
from submitit.core.job_environment import SignalHandler

from freqlat.core.distributed import get_rank, is_distributed
from freqlat.core.launch_options import LaunchOptions

logger = logging.getLogger(__name__)


def make_executor(options: LaunchOptions, folder: str | os.PathLike[str]) -> submitit.Executor:
    """Build the submitit executor for ``options`` with its logs and pickles under ``folder``.

    For ``slurm`` there are ``options.tasks`` tasks per node (by default one per GPU, one on
    CPU-only nodes), each with ``cpus_per_task`` CPUs; partition, account, qos and
    ``slurm_additional_parameters`` (any other sbatch option) are passed through.
    """
    folder = Path(folder)
    if options.launcher == "debug":
        return submitit.DebugExecutor(folder)
    if options.launcher == "local-submitit":
        executor = submitit.LocalExecutor(folder, max_num_timeout=options.max_num_timeout)
        executor.update_parameters(
            timeout_min=options.timeout_min,
            tasks_per_node=options.tasks,
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
        "tasks_per_node": options.tasks,
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

"""Where and how a job runs: the launch settings every freqlat command embeds in its config.

Kept apart from :mod:`freqlat.core.launcher` (which needs torch and submitit) so that a
command line can show and check these settings before anything heavy is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freqlat.core.config import CONFIG_FILE, config_field, config_keys, write_config_json

LAUNCHERS: tuple[str, ...] = ("local", "local-submitit", "debug", "slurm")
"""Accepted values of :attr:`LaunchOptions.launcher`."""


@dataclass
class LaunchOptions:
    """Where and how a job runs.

    ``launcher``: ``local`` calls the job in this process; ``debug`` uses submitit's
    DebugExecutor (in this process, on ``job.result()``); ``local-submitit`` runs
    :attr:`tasks` processes on this machine with submitit's LocalExecutor (real signals and
    requeue, for tests); ``slurm`` submits an sbatch job with :attr:`tasks` tasks per node.

    A task drives one GPU, so on SLURM a job with GPUs needs exactly one task per GPU; a job
    without GPUs (``gpus_per_node=0``) may run any number of CPU tasks (gloo), each with
    ``cpus_per_task`` CPUs.
    """

    launcher: str = config_field(
        "local",
        help="local: in this process; debug: submitit in this process; local-submitit: "
        "processes on this machine; slurm: an sbatch job",
        choices=LAUNCHERS,
    )
    nodes: int = config_field(1, help="nodes of a SLURM job")
    gpus_per_node: int = config_field(1, help="GPUs per node (0 for CPU-only nodes)")
    tasks_per_node: int | None = config_field(
        None,
        help="processes per node; none: one per GPU (one on CPU-only nodes), e.g. set it to "
        "run several gloo processes on a CPU node",
    )
    cpus_per_task: int = config_field(8, help="CPUs of each task")
    mem_gb: int | None = config_field(None, help="memory per node in GB (none: the default)")
    partition: str | None = config_field(None, help="SLURM partition")
    account: str | None = config_field(None, help="SLURM account")
    qos: str | None = config_field(None, help="SLURM quality of service")
    timeout_min: int = config_field(24 * 60, help="wall-clock limit of one job, in minutes")
    job_name: str = config_field("freqlat", help="the job's name in the queue")
    max_num_timeout: int = config_field(10, help="how many times a timed-out job is requeued")
    signal_delay_s: int = config_field(
        120, help="seconds before the time limit at which the job is told to save and requeue"
    )
    slurm_additional_parameters: dict[str, Any] = config_field(
        default_factory=dict, help='any other sbatch options, e.g. {"constraint": "a100"}'
    )

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ValueError(f"unknown launcher {self.launcher!r}; choose one of {LAUNCHERS}")
        for name in ("nodes", "cpus_per_task", "timeout_min"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.tasks_per_node is not None and self.tasks_per_node < 1:
            raise ValueError(f"tasks_per_node must be at least 1, got {self.tasks_per_node}")
        if self.gpus_per_node < 0:
            raise ValueError(f"gpus_per_node must be non-negative, got {self.gpus_per_node}")
        if self.launcher == "slurm" and self.gpus_per_node and self.tasks != self.gpus_per_node:
            raise ValueError(
                f"tasks_per_node ({self.tasks}) must equal gpus_per_node "
                f"({self.gpus_per_node}) on SLURM: each task drives one GPU "
                "(more tasks than GPUs need gpus_per_node 0, a CPU job)"
            )

    @property
    def tasks(self) -> int:
        """Processes per node: ``tasks_per_node`` if set, else one per GPU (at least one)."""
        if self.tasks_per_node is not None:
            return self.tasks_per_node
        return max(1, self.gpus_per_node)

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


def write_run_config(directory: str | os.PathLike[str], config: Any) -> Path:
    """Write ``<directory>/config.json`` for a config that embeds :class:`LaunchOptions`, or check
    that the one there holds the same config: where and how a job is launched may change between
    starts, nothing else may (see :func:`freqlat.core.config.write_config_json`)."""
    launch_keys = set(config_keys(LaunchOptions))
    return write_config_json(Path(directory) / CONFIG_FILE, config, may_differ=launch_keys)

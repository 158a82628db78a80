"""Launchers: in-process, debug, SLURM parameters, and a real requeue after a timeout signal."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
import submitit
import torch
from submitit.slurm.slurm import _make_sbatch_string

from freqlat.core.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from freqlat.core.distributed import barrier, cleanup, init_distributed
from freqlat.core.launcher import LaunchOptions, PreemptionGuard, launch, slurm_parameters

# The jobs below are defined in this test module, which the job's process cannot import.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def add(a: int, b: int) -> int:
    return a + b


def test_local_launcher_runs_in_process():
    assert launch(lambda: add(2, 3), LaunchOptions("local"), "unused") == 5


def test_debug_launcher_uses_submitits_debug_executor(tmp_path: Path):
    job = launch(lambda: add(4, 5), LaunchOptions("debug"), tmp_path)
    assert isinstance(job, submitit.Job) and job.result() == 9


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="unknown launcher"):
        LaunchOptions("kubernetes")
    with pytest.raises(ValueError, match="nodes"):
        LaunchOptions("slurm", nodes=0)


def test_slurm_options_become_one_task_per_gpu_and_sbatch_lines():
    options = LaunchOptions(
        "slurm",
        nodes=2,
        gpus_per_node=8,
        cpus_per_task=12,
        partition="gpu",
        account="proj",
        qos="high",
        timeout_min=600,
        slurm_additional_parameters={"constraint": "h100"},
    )
    params = slurm_parameters(options)
    assert params["tasks_per_node"] == 8 and params["gpus_per_node"] == 8
    sbatch_args = {
        key.removeprefix("slurm_"): value
        for key, value in params.items()
        if key not in ("name", "timeout_min", "tasks_per_node", "slurm_additional_parameters")
    }
    script = _make_sbatch_string(
        command="python -c pass",
        folder="/tmp/run/submitit",
        job_name=params["name"],
        time=params["timeout_min"],
        ntasks_per_node=params["tasks_per_node"],
        additional_parameters=params["slurm_additional_parameters"],
        **sbatch_args,
    )
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --cpus-per-task=12",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj",
        "#SBATCH --qos=high",
        "#SBATCH --time=600",
        "#SBATCH --constraint=h100",
    ):
        assert line in script, line


def test_tasks_per_node_defaults_to_one_per_gpu_and_is_honoured_when_set():
    assert slurm_parameters(LaunchOptions("slurm", gpus_per_node=4))["tasks_per_node"] == 4
    assert slurm_parameters(LaunchOptions("slurm", gpus_per_node=0))["tasks_per_node"] == 1
    cpu_only = slurm_parameters(LaunchOptions("slurm", gpus_per_node=0, tasks_per_node=6))
    assert cpu_only["tasks_per_node"] == 6 and "gpus_per_node" not in cpu_only
    assert LaunchOptions("local-submitit", tasks_per_node=2).tasks == 2
    with pytest.raises(ValueError, match="tasks_per_node"):
        LaunchOptions("slurm", tasks_per_node=0)


def test_a_cpu_slurm_job_runs_its_tasks_without_a_gpu_request():
    options = LaunchOptions("slurm", gpus_per_node=0, tasks_per_node=2, cpus_per_task=1)
    params = slurm_parameters(options)
    assert params["tasks_per_node"] == 2 and params["cpus_per_task"] == 1
    assert "gpus_per_node" not in params and "slurm_gres" not in params
    assert options.use_cuda is False


def test_a_gpu_slurm_job_needs_one_task_per_gpu_and_cuda():
    with pytest.raises(ValueError, match=r"tasks_per_node \(2\) must equal gpus_per_node \(8\)"):
        LaunchOptions("slurm", gpus_per_node=8, tasks_per_node=2)
    assert LaunchOptions("slurm", gpus_per_node=8).use_cuda is True
    assert LaunchOptions("local", gpus_per_node=1).use_cuda is None  # wherever CUDA is
    assert LaunchOptions("local", gpus_per_node=0).use_cuda is False


def test_guard_is_inert_outside_a_submitit_job():
    guard = PreemptionGuard()
    assert not guard.active and not guard.should_stop()
    with pytest.raises(RuntimeError, match="submitit"):
        guard.requeue()


class CountingJob(submitit.helpers.Checkpointable):
    """Adds 1 + 2 + ... + total on every rank, checkpointing on preemption and resuming."""

    def __init__(self, run_dir: Path, total: int, wait_at: int) -> None:
        self.run_dir = run_dir
        self.total = total
        self.wait_at = wait_at

    def __call__(self) -> dict:
        context = init_distributed()
        guard = PreemptionGuard()
        accumulator = torch.nn.Module()
        accumulator.register_buffer("total", torch.zeros(()))
        step = 0
        latest = latest_checkpoint(self.run_dir / "checkpoints")
        if latest is not None:
            step = load_checkpoint(latest, weights={"acc": accumulator}).step
        if context.is_main:
            with open(self.run_dir / "starts.txt", "a") as starts:
                starts.write(f"{step}\n")
        while step < self.total:
            step += 1
            accumulator.total += step
            if step == self.wait_at and latest is None:
                # Rank 0 tells the test its pid, then every rank polls (collectively) until the
                # signal the test sends to rank 0 only has been seen.
                if context.is_main:
                    (self.run_dir / "pid.txt").write_text(str(os.getpid()))
                deadline = time.monotonic() + 120
                while not guard.should_stop() and time.monotonic() < deadline:
                    time.sleep(0.05)
            if guard.should_stop():
                save_checkpoint(self.run_dir / "checkpoints", step, weights={"acc": accumulator})
                guard.requeue()
        barrier()
        cleanup()
        starts_seen = (self.run_dir / "starts.txt").read_text().split()
        return {
            "rank": context.rank,
            "sum": accumulator.total.item(),
            "starts": [int(s) for s in starts_seen],
        }


@pytest.mark.parametrize("tasks", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_timeout_signal_to_rank_zero_checkpoints_requeues_and_resumes_all_ranks(
    tmp_path: Path, tasks: int
):
    job = launch(
        CountingJob(tmp_path, total=10, wait_at=4),
        LaunchOptions("local-submitit", tasks_per_node=tasks, timeout_min=5),
        tmp_path / "submitit",
    )
    pid_file = tmp_path / "pid.txt"
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pid_file.exists(), job.stderr()
    os.kill(int(pid_file.read_text()), signal.SIGUSR2)
    results = sorted(job.results(), key=lambda r: r["rank"])
    assert results == [{"rank": r, "sum": 55.0, "starts": [0, 4]} for r in range(tasks)]
    assert "Requeued job" in (job.stderr() or "") + (job.stdout() or "")

"""``freqlat-train tokenizer --launcher slurm`` on a real one-node SLURM cluster (CPU, gloo).

Each job is the tiny KL-VAE run of conftest.py with one torch thread per task, and is compared
with a local run of the same config: a job that runs through ends with the local run's files and
final state; a job sent SLURM's timeout signal checkpoints, requeues, is released, resumes and
ends bit for bit where the uninterrupted run does; a job of two tasks on one node runs DDP
across them and ends where the 2-process local run does.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from freqlat.core import latest_checkpoint, list_checkpoints
from freqlat.core.checkpoint import rng_file_name
from freqlat.train.cli import main

pytestmark = pytest.mark.slurm

# Long enough that a signal sent after the first checkpoint lands well before the end.
STEPS = 24
CHECKPOINT_EVERY = 2
DDP_STEPS = 12
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
LAUNCH_KEYS = {"run_dir", "launcher", "partition", "gpus_per_node", "tasks_per_node"}
LAUNCH_KEYS |= {"cpus_per_task", "timeout_min"}

# Every rank runs the CLI with sys.argv[1:], one torch thread (see conftest.start_ranks).
RANK_SCRIPT = """
import sys

import torch

from freqlat.train.cli import main

torch.set_num_threads(1)
sys.exit(main(sys.argv[1:]))
"""


def _slurm_args(args: list[str], cluster, tasks: int = 1) -> list[str]:
    """``args`` submitted as a CPU job of ``tasks`` tasks with one CPU each."""
    return [
        *args,
        "--launcher",
        "slurm",
        "--partition",
        cluster.partition,
        "--gpus-per-node",
        "0",
        "--tasks-per-node",
        str(tasks),
        "--cpus-per-task",
        "1",
        "--timeout-min",
        "30",
    ]


def _final(run_dir: Path, steps: int) -> Path:
    return run_dir / "checkpoints" / f"step_{steps:09d}"


def _files(run_dir: Path) -> list[str]:
    """The run directory's files, relative; tensorboard event names (time, host, pid) blanked."""
    names = []
    for path in run_dir.rglob("*"):
        relative = path.relative_to(run_dir)
        if path.is_file() and relative.parts[0] != "submitit":
            name = str(relative)
            if relative.parts[0] == "tensorboard":
                name = str(relative.parent / ".".join(relative.name.split(".")[:3]))
            names.append(name)
    return sorted(names)


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory, tiny_args):
    """The uninterrupted local run of the slurm jobs' config, in this process, one thread.

    The tests ask for it once their job is submitted, so that it trains while the job starts.
    """
    run_dir = tmp_path_factory.mktemp("slurm-reference") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(tiny_args(run_dir, steps=STEPS, checkpoint_every=CHECKPOINT_EVERY)) == 0
    finally:
        torch.set_num_threads(before)
    return run_dir


def test_slurm_job_writes_what_a_local_run_writes_with_the_same_final_state(
    tmp_path, tiny_args, slurm_cluster, request, same_training_state
):
    run_dir = tmp_path / "run"
    args = tiny_args(run_dir, steps=STEPS, checkpoint_every=CHECKPOINT_EVERY)
    job = slurm_cluster.submit(main, _slurm_args(args, slurm_cluster), **THREADS)
    local_reference = request.getfixturevalue("local_reference")  # trains while the job runs
    slurm_cluster.wait_completed(job)

    assert _files(run_dir) == _files(local_reference)
    ours = json.loads((run_dir / "config.json").read_text())
    theirs = json.loads((local_reference / "config.json").read_text())
    assert ours["launcher"] == "slurm" and ours["tasks_per_node"] == 1
    assert {k: v for k, v in ours.items() if k not in LAUNCH_KEYS} == {
        k: v for k, v in theirs.items() if k not in LAUNCH_KEYS
    }
    same_training_state(_final(run_dir, STEPS), _final(local_reference, STEPS))
    for name in ("model", "ema"):
        exported = load_file(str(run_dir / "export" / name / "model.safetensors"))
        expected = load_file(str(local_reference / "export" / name / "model.safetensors"))
        assert exported.keys() == expected.keys()
        assert all(torch.equal(exported[k], expected[k]) for k in expected), f"export/{name}"
    assert "1 process(es)" in (run_dir / "train.log").read_text()


def test_timeout_signal_checkpoints_requeues_and_the_released_job_resumes_exactly(
    tmp_path, tiny_args, slurm_cluster, request, same_training_state
):
    run_dir = tmp_path / "run"
    checkpoints = run_dir / "checkpoints"
    args = tiny_args(run_dir, steps=STEPS, checkpoint_every=CHECKPOINT_EVERY)
    job = slurm_cluster.submit(main, _slurm_args(args, slurm_cluster), **THREADS)
    slurm_cluster.wait_until(
        job,
        lambda fields: fields["JobState"] == "RUNNING" and bool(list_checkpoints(checkpoints)),
        "its first checkpoint",
    )
    # What submitit's own preemption test does (SlurmJob._interrupt): SIGTERM, which its
    # handler ignores, then the timeout signal it asked SLURM for (sbatch --signal=USR2@...).
    slurm_cluster.signal(job, "TERM")
    slurm_cluster.signal(job, "USR2")
    fields = slurm_cluster.wait_requeued(job)
    assert fields["Reason"] == "BeginTime", fields  # held back: released below, not waited for
    stopped_at = latest_checkpoint(checkpoints)
    assert stopped_at is not None and stopped_at != _final(run_dir, STEPS)
    log = (run_dir / "train.log").read_text()
    assert "will checkpoint and requeue" in log and "resumed from" not in log

    slurm_cluster.release(job)
    local_reference = request.getfixturevalue("local_reference")  # trained already, or now
    fields = slurm_cluster.wait_completed(job)
    assert fields["Restarts"] == "1"
    assert f"resumed from {stopped_at}" in (run_dir / "train.log").read_text()
    same_training_state(_final(run_dir, STEPS), _final(local_reference, STEPS))


def test_two_tasks_on_one_node_train_with_ddp_like_two_local_processes(
    tmp_path, tiny_args, slurm_cluster, start_ranks, same_training_state
):
    def args(run_dir: Path) -> list[str]:
        return tiny_args(run_dir, steps=DDP_STEPS, batch_size=2, grid_images=2)

    run_dir = tmp_path / "slurm"
    job = slurm_cluster.submit(main, _slurm_args(args(run_dir), slurm_cluster, tasks=2), **THREADS)
    # The 2-process local run trains while the job runs.
    reference = tmp_path / "local"
    logs = tmp_path / "rank-logs"
    for rank, process in enumerate(start_ranks(RANK_SCRIPT, args(reference), 2, logs)):
        assert process.wait(timeout=300) == 0, (logs / f"rank{rank}.txt").read_text()[-3000:]
    fields = slurm_cluster.wait_completed(job)
    assert fields["NumTasks"] == "2", fields

    assert "2 process(es)" in (run_dir / "train.log").read_text()
    final = _final(run_dir, DDP_STEPS)
    assert all((final / rng_file_name(rank)).is_file() for rank in (0, 1))
    same_training_state(final, _final(reference, DDP_STEPS))

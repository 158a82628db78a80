"""Placement detection, seeding, and a real 2-process gloo group run as a submitit job."""

from __future__ import annotations

import copy
import random
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from torch import nn

from freqlat.core.checkpoint import load_checkpoint, rng_file_name, save_checkpoint
from freqlat.core.distributed import (
    all_reduce_mean,
    barrier,
    broadcast_from_main,
    cleanup,
    detect_placement,
    init_distributed,
    seed_everything,
)
from freqlat.core.launcher import LaunchOptions, launch

# The job below is defined in this test module, which the job's process cannot import.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

PLACEMENT_VARS = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "SUBMITIT_EXECUTOR",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_LOCALID",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_ID",
    "SLURM_JOB_NUM_NODES",
    "SLURM_NODEID",
)


@pytest.fixture
def clean_env(monkeypatch):
    for name in PLACEMENT_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_torchrun_variables_give_the_placement(clean_env):
    for name, value in dict(
        RANK="3", WORLD_SIZE="8", LOCAL_RANK="1", MASTER_ADDR="node7", MASTER_PORT="29400"
    ).items():
        clean_env.setenv(name, value)
    placement = detect_placement()
    assert (placement.rank, placement.world_size, placement.local_rank) == (3, 8, 1)
    assert (placement.master_addr, placement.master_port, placement.source) == (
        "node7",
        29400,
        "torchrun",
    )


def test_slurm_variables_give_the_placement_with_the_first_node_as_master(clean_env):
    for name, value in dict(
        SLURM_PROCID="5",
        SLURM_NTASKS="8",
        SLURM_LOCALID="1",
        SLURM_JOB_ID="4242",
        SLURM_JOB_NODELIST="gpu[07-08,11]",
        SLURM_JOB_NUM_NODES="3",
        SLURM_NODEID="1",
    ).items():
        clean_env.setenv(name, value)
    placement = detect_placement()
    assert (placement.rank, placement.world_size, placement.local_rank) == (5, 8, 1)
    assert placement.master_addr == "gpu07" and placement.source == "slurm"
    assert 20000 <= placement.master_port <= 60000
    assert detect_placement().master_port == placement.master_port


def test_no_variables_mean_a_single_process(clean_env):
    placement = detect_placement()
    assert (placement.rank, placement.world_size, placement.source) == (0, 1, "single")
    context = init_distributed()
    assert context.world_size == 1 and context.is_main and context.backend is None
    assert torch.equal(all_reduce_mean(torch.tensor([2.0])), torch.tensor([2.0]))
    barrier()


def test_a_job_without_gpus_stays_on_the_cpu_and_one_with_gpus_needs_cuda(clean_env):
    assert init_distributed(use_cuda=False).device == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="asked for GPUs but CUDA is not available"):
            init_distributed(use_cuda=True)


def test_torchrun_without_master_is_a_clear_error(clean_env):
    clean_env.setenv("RANK", "0")
    clean_env.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        detect_placement()


def test_seeding_is_reproducible_and_differs_between_ranks():
    draws = []
    for rank in (0, 0, 1):
        seed_everything(7, rank)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))  # noqa: NPY002
    assert draws[0] == draws[1]
    assert draws[0] != draws[2]


class TwoRankCheck:
    """Runs in each task: joins the group, checks collectives, gradients and a checkpoint."""

    def __init__(self, checkpoint_root: Path) -> None:
        self.checkpoint_root = checkpoint_root

    def __call__(self) -> dict:
        context = init_distributed()
        try:
            torch.manual_seed(0)
            model = nn.Linear(4, 2)
            inputs, targets = torch.randn(8, 4), torch.randn(8, 2)
            reference = copy.deepcopy(model)
            nn.functional.mse_loss(reference(inputs), targets).backward()
            # Averaging the shard gradients over ranks (what DDP does) gives the full-batch one.
            shard = slice(context.rank, None, context.world_size)
            nn.functional.mse_loss(model(inputs[shard]), targets[shard]).backward()
            grad_error = max(
                (all_reduce_mean(p.grad) - q.grad).abs().max().item()
                for p, q in zip(model.parameters(), reference.parameters(), strict=True)
            )
            # Ranks seeded apart start with different weights until broadcast from rank 0.
            seed_everything(0, context.rank)
            fresh = nn.Linear(3, 3)
            rank0_weight = fresh.weight.detach().clone()
            broadcast_from_main([rank0_weight])
            before = all_reduce_mean((fresh.weight - rank0_weight).abs().sum().reshape(1))
            broadcast_from_main([p.data for p in fresh.parameters()])
            after = (fresh.weight - rank0_weight).abs().max().item()
            seed_everything(0, context.rank)
            path = save_checkpoint(self.checkpoint_root, 1, weights={"model": model})
            expected_draw = torch.rand(1).item()
            torch.manual_seed(123)
            load_checkpoint(path, weights={"model": model})
            return {
                "rank": context.rank,
                "world_size": context.world_size,
                "backend": context.backend,
                "mean_rank": all_reduce_mean(torch.tensor([float(context.rank)])).item(),
                "grad_error": grad_error,
                "rng_restored": torch.rand(1).item() == expected_draw,
                "differed_before_broadcast": before.item() > 0,
                "differs_after_broadcast": after,
            }
        finally:
            cleanup()


def test_two_process_gloo_group_in_a_submitit_local_job(tmp_path: Path):
    options = LaunchOptions("local-submitit", tasks_per_node=2, timeout_min=5)
    job = launch(TwoRankCheck(tmp_path / "checkpoints"), options, tmp_path / "submitit")
    results = sorted(job.results(), key=lambda r: r["rank"])
    assert [r["rank"] for r in results] == [0, 1]
    for result in results:
        assert result["world_size"] == 2 and result["backend"] == "gloo"
        assert result["mean_rank"] == 0.5
        assert result["grad_error"] < 1e-6
        assert result["rng_restored"]
        assert result["differed_before_broadcast"] and result["differs_after_broadcast"] == 0
    step_dir = tmp_path / "checkpoints" / "step_000000001"
    assert (step_dir / rng_file_name(0)).is_file() and (step_dir / rng_file_name(1)).is_file()

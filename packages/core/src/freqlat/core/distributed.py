"""torch.distributed set-up from torchrun or SLURM/submitit variables, and small helpers.

:func:`init_distributed` reads where the process stands (torchrun's ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``; else a submitit job or a SLURM step, whose first
host becomes the master), starts a process group when there is more than one process (NCCL on
GPU, gloo on CPU), and otherwise leaves a single process without a group. The helpers work in
both cases.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessPlacement:
    """Where this process sits: ranks, world size, master endpoint, and who said so."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int
    source: str


@dataclass(frozen=True)
class DistributedContext:
    """What :func:`init_distributed` set up: ranks, the device to use, the backend (or None)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that logs and writes shared files."""
        return self.rank == 0


def _master_port_for(job_id: str) -> int:
    """MASTER_PORT if set, else a port in [20000, 60000] derived from the job id (as submitit)."""
    if "MASTER_PORT" in os.environ:
        return int(os.environ["MASTER_PORT"])
    return random.Random(job_id).randint(20000, 60000)


def detect_placement() -> ProcessPlacement:
    """Read this process's placement from the environment, without starting anything.

    Order: torchrun variables; a submitit job (SLURM or submitit's local executor); a plain
    SLURM step (``srun``); otherwise a single process.
    """
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        world_size = int(env["WORLD_SIZE"])
        if world_size > 1 and not ("MASTER_ADDR" in env and "MASTER_PORT" in env):
            raise ValueError("RANK/WORLD_SIZE are set but MASTER_ADDR or MASTER_PORT is missing")
        return ProcessPlacement(
            rank=int(env["RANK"]),
            world_size=world_size,
            local_rank=int(env.get("LOCAL_RANK", "0")),
            master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
            master_port=int(env.get("MASTER_PORT", "29500")),
            source="torchrun",
        )
    job_env = None
    if env.get("SUBMITIT_EXECUTOR"):
        import submitit

        job_env = submitit.JobEnvironment()
    elif "SLURM_PROCID" in env and "SLURM_NTASKS" in env and "SLURM_JOB_NODELIST" in env:
        from submitit.slurm.slurm import SlurmJobEnvironment

        job_env = SlurmJobEnvironment()
    if job_env is not None:
        return ProcessPlacement(
            rank=job_env.global_rank,
            world_size=job_env.num_tasks,
            local_rank=job_env.local_rank,
            master_addr=job_env.hostnames[0],
            master_port=_master_port_for(job_env.job_id),
            source=job_env.cluster,
        )
    return ProcessPlacement(0, 1, 0, "127.0.0.1", 29500, "single")


def init_distributed(
    backend: str | None = None, use_cuda: bool | None = None
) -> DistributedContext:
    """Join the process group this process belongs to, or set up a single process.

    ``use_cuda``: None uses CUDA when it is available; False keeps the process on the CPU even
    where CUDA is visible (a job given no GPUs); True requires CUDA (a RuntimeError if there is
    none). See :attr:`freqlat.core.LaunchOptions.use_cuda`. ``backend`` defaults to NCCL on GPU
    and gloo on CPU. On GPU the process uses ``cuda:<local_rank>``. Calling it again once a
    group exists returns the same context.
    """
    placement = detect_placement()
    if use_cuda is None:
        use_cuda = torch.cuda.is_available()
    elif use_cuda and not torch.cuda.is_available():
        raise RuntimeError(
            f"the job asked for GPUs but CUDA is not available on {socket.gethostname()} "
            f"(rank {placement.rank}; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"
        )
    if use_cuda:
        device = torch.device("cuda", placement.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if placement.world_size == 1:
        return DistributedContext(0, 1, 0, device, None)
    backend = backend or ("nccl" if use_cuda else "gloo")
    if not dist.is_initialized():
        os.environ["MASTER_ADDR"] = placement.master_addr
        os.environ["MASTER_PORT"] = str(placement.master_port)
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            rank=placement.rank,
            world_size=placement.world_size,
        )
    return DistributedContext(
        placement.rank, placement.world_size, placement.local_rank, device, dist.get_backend()
    )


def is_distributed() -> bool:
    """True when a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process)."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every process; a no-op without a process group."""
    if is_distributed():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over all processes (a new tensor; the input is left untouched)."""
    result = tensor.detach().clone()
    if is_distributed():
        dist.all_reduce(result, op=dist.ReduceOp.SUM)
        result /= dist.get_world_size()
    return result


def broadcast_from_main(tensors: Iterable[torch.Tensor]) -> None:
    """Overwrite every tensor in place with rank 0's value (a no-op without a process group).

    For state that no DDP wrapper synchronises, e.g. a loss's discriminator: each rank is seeded
    differently, so freshly initialised weights differ between ranks until this is called.
    """
    if not is_distributed():
        return
    for tensor in tensors:
        dist.broadcast(tensor, src=0)


def cleanup() -> None:
    """Destroy the process group if one is running."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int, rank: int = 0) -> int:
    """Seed Python, numpy's legacy RNG and torch (CPU and CUDA) for one rank.

    Each rank gets its own seed, derived from ``(seed, rank)`` with numpy's SeedSequence, so
    ranks draw different noise while the run as a whole stays reproducible. Returns that seed.
    """
    derived = int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
    random.seed(derived)
    # Libraries still draw from numpy's legacy global RNG, so it is seeded too.
    np.random.seed(derived)  # noqa: NPY002
    torch.manual_seed(derived)
    return derived

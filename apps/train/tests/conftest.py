"""Shared helpers: the tiny run used across tests, and running the CLI in-process or as a process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

PRESET = "kl-vae-f16d16-tiny"
STEPS = 12
CHECKPOINT_EVERY = 3


def tiny_run_args(run_dir: Path, **extra: object) -> list[str]:
    """CLI arguments of a 12-step run of the tiny KL-VAE on embedded 32 px crops, GAN from step 2."""
    values = {
        "data": "embedded",
        "run_dir": run_dir,
        "steps": STEPS,
        "batch_size": 4,
        "checkpoint_every": CHECKPOINT_EVERY,
        "keep_checkpoints": 2,
        "disc_start": 2,
        "grid_every": 6,
        "grid_images": 4,
        "log_every": 3,
        "precision": "fp32",
        "grad_clip": 1.0,
    }
    values.update(extra)
    args = ["tokenizer", "--preset", PRESET]
    for key, value in values.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


@pytest.fixture
def tiny_args():
    """Build the CLI arguments of the tiny test run (see :func:`tiny_run_args`)."""
    return tiny_run_args


def cli_command(args: list[str]) -> list[str]:
    """The command line running ``freqlat-train`` with ``args`` in a fresh interpreter."""
    return [
        sys.executable,
        "-c",
        "import sys; from freqlat.train.cli import main; sys.exit(main())",
        *args,
    ]


@pytest.fixture
def single_thread_env():
    """Environment for CLI subprocesses: one torch thread, as the in-process runs use."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture
def one_thread():
    """Run the test body with one torch thread (bitwise-comparable with the subprocesses)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def read_weights(checkpoint_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Every weights file of a checkpoint directory, by name."""
    return {p.stem: load_file(str(p)) for p in sorted(checkpoint_dir.glob("*.safetensors"))}


@pytest.fixture
def run_subprocess():
    """Start the CLI as a separate process, its output appended to ``log_dir/out.txt``."""
    logs = []

    def start(args: list[str], env: dict[str, str], log_dir: Path) -> subprocess.Popen:
        log_dir.mkdir(parents=True, exist_ok=True)
        logs.append(open(log_dir / "out.txt", "ab"))  # noqa: SIM115 - closed at teardown
        return subprocess.Popen(
            cli_command(args), env=env, stdout=logs[-1], stderr=subprocess.STDOUT
        )

    yield start
    for handle in logs:
        handle.close()


@pytest.fixture
def weights_of():
    """Read a checkpoint directory's weights (see :func:`read_weights`)."""
    return read_weights


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A complete tiny run, trained in this process with one torch thread; its run directory."""
    from freqlat.train.cli import main

    run_dir = tmp_path_factory.mktemp("finished") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(tiny_run_args(run_dir)) == 0
    finally:
        torch.set_num_threads(before)
    return run_dir

"""Shared helpers: the tiny runs used across tests (a tokenizer run; a latent cache and a
generator run on it), running the CLI in-process or as a process, starting ranks of a gloo
process group, and comparing two runs' checkpoints."""

import multiprocessing
import multiprocessing.process
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from freqlat.core import list_checkpoints
from freqlat.core.checkpoint import TRAINING_STATE_FILE, rng_file_name

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
    return cli_args(["tokenizer", "--preset", PRESET], values)


def cli_args(head: list[str], values: dict[str, object]) -> list[str]:
    """``head`` followed by ``--key value`` for every entry of ``values``."""
    args = list(head)
    for key, value in values.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


@pytest.fixture(scope="session")
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc), e.g. a submitit job's tasks."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def children_of():
    """List a process's children (see :func:`child_pids`)."""
    return child_pids


@pytest.fixture
def free_port():
    """Return a function giving a TCP port on 127.0.0.1 that is free now (for MASTER_PORT)."""
    return _free_port


# Runs first in every rank: take the rank's variables, send its output to its log file.
_RANK_PRELUDE = """
import os
import sys

os.environ.update(rank_env)
_log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
os.dup2(_log, 1)
os.dup2(_log, 2)
sys.argv = ["rank", *argv]
"""


class RankProcess:
    """One rank started by :func:`start_ranks`, with the ``subprocess.Popen`` calls tests use."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process

    @property
    def pid(self) -> int | None:
        """The process id."""
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal), None while running."""
        return self.process.exitcode

    def poll(self) -> int | None:
        """The exit code if the rank has exited, else None."""
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the rank to exit and return its exit code."""
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise TimeoutError(f"rank process {self.pid} still running after {timeout} s")
        return self.process.exitcode

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the rank."""
        os.kill(self.process.pid, sig)


@pytest.fixture
def start_ranks():
    """Start the ranks of a gloo process group, each running the Python source ``script``.

    ``start(script, argv, world_size, log_dir)`` gives every rank the variables torchrun would
    set (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, a fresh ``MASTER_PORT``) and ``sys.argv[1:]
    == argv``, appends rank r's output to ``log_dir/rank{r}.txt``, and returns the ranks in
    order. Ranks are new processes forked from multiprocessing's forkserver, a clean interpreter
    that has imported torch and freqlat.train once, so a start costs no import time; torch is
    already loaded, so the script sets its thread count with ``torch.set_num_threads`` (not
    ``OMP_NUM_THREADS``). Ranks still running at teardown are killed.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["torch", "freqlat.train.loop", "freqlat.train.generator_loop", "freqlat.train.cli"]
    )
    started: list[RankProcess] = []

    def start(script: str, argv: list[str], world_size: int, log_dir: Path) -> list[RankProcess]:
        log_dir.mkdir(parents=True, exist_ok=True)
        port = str(_free_port())
        ranks = []
        for rank in range(world_size):
            rank_env = {
                "RANK": str(rank),
                "WORLD_SIZE": str(world_size),
                "LOCAL_RANK": str(rank),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": port,
            }
            namespace = {
                "__name__": "__main__",
                "rank_env": rank_env,
                "log_path": str(log_dir / f"rank{rank}.txt"),
                "argv": list(argv),
            }
            process = context.Process(target=exec, args=(_RANK_PRELUDE + script, namespace))
            process.start()
            ranks.append(RankProcess(process))
        started.extend(ranks)
        return ranks

    yield start
    for rank in started:
        if rank.poll() is None:
            rank.process.kill()
            rank.process.join()


def assert_same_training_state(
    final: Path,
    reference: Path,
    weights: tuple[str, ...] = ("ema", "loss", "model"),
    optimizers: tuple[str, ...] = ("ae_optimizer", "disc_optimizer"),
) -> None:
    """Assert two checkpoints hold bitwise-equal weights, optimiser states and data position.

    Weights: every safetensors file (by default a tokenizer run's model, EMA, loss with its
    discriminators). Training state: the data position and every tensor of the ``optimizers``'
    per-parameter state.
    """
    ours, theirs = read_weights(final), read_weights(reference)
    assert sorted(ours) == sorted(theirs) == sorted(weights)
    for name in ours:
        assert ours[name].keys() == theirs[name].keys()
        for key in ours[name]:
            assert torch.equal(ours[name][key], theirs[name][key]), f"{name}/{key} differs"
    state = torch.load(final / TRAINING_STATE_FILE, weights_only=True)
    expected = torch.load(reference / TRAINING_STATE_FILE, weights_only=True)
    assert state["data"] == expected["data"]
    for group in optimizers:
        assert state[group]["state"].keys() == expected[group]["state"].keys(), group
        for index, slot in expected[group]["state"].items():
            for key, value in slot.items():
                assert torch.equal(state[group]["state"][index][key], value), f"{group} {key}"


@pytest.fixture
def same_training_state():
    """Compare two checkpoint directories (see :func:`assert_same_training_state`)."""
    return assert_same_training_state


def assert_same_rank_rngs(final: Path, reference: Path, world_size: int) -> None:
    """Every rank's saved RNG state equals the reference rank's; the ranks' states differ."""
    states = []
    for rank in range(world_size):
        ours = torch.load(final / rng_file_name(rank), weights_only=True)
        theirs = torch.load(reference / rng_file_name(rank), weights_only=True)
        assert torch.equal(ours["torch"], theirs["torch"]), f"rank {rank} torch RNG differs"
        assert torch.equal(ours["numpy"]["keys"], theirs["numpy"]["keys"]), f"rank {rank} numpy"
        assert ours["numpy"]["pos"] == theirs["numpy"]["pos"], f"rank {rank} numpy position"
        assert torch.equal(ours["python"]["state"], theirs["python"]["state"]), f"rank {rank} py"
        states.append(ours)
    assert not torch.equal(states[0]["torch"], states[1]["torch"]), "ranks share one torch RNG"
    assert not torch.equal(states[0]["python"]["state"], states[1]["python"]["state"])


@pytest.fixture
def same_rank_rngs():
    """Compare every rank's RNG state of two checkpoints (see :func:`assert_same_rank_rngs`)."""
    return assert_same_rank_rngs


# ---- generator runs: a tiny latent cache, and a tiny LightningDiT trained on it ----

GENERATOR_PRESET = "lightningdit-tiny"
GENERATOR_STEPS = 12
TINY_DIT = '{"hidden_size": 64, "depth": 2}'


def cache_run_args(out: Path, **extra: object) -> list[str]:
    """CLI arguments caching 48 embedded 32 px crops with a random tiny KL-VAE, 3 shards of 16."""
    values: dict[str, object] = {
        "tokenizer": "random:kl-vae-f16d16-tiny",
        "out": out,
        "data": "embedded",
        "image_size": 32,
        "max_images": 48,
        "shard_size": 16,
        "batch_size": 8,
        "num_workers": 0,
    }
    values.update(extra)
    return cli_args(["cache-latents"], values)


def generator_run_args(run_dir: Path, latents: Path, **extra: object) -> list[str]:
    """CLI arguments of a 12-step run of a 2-block LightningDiT on ``latents`` (``preset=``
    names another preset), a log line every step, a checkpoint every 3, 2-sample grids every 6."""
    values: dict[str, object] = {
        "latents": latents,
        "run_dir": run_dir,
        "steps": GENERATOR_STEPS,
        "batch_size": 8,
        "checkpoint_every": 3,
        "keep_checkpoints": 2,
        "grid_every": 6,
        "grid_samples": 2,
        "grid_steps": 3,
        "log_every": 1,
        "grad_clip": 1.0,
        "model_overrides": TINY_DIT,
    }
    preset = str(extra.pop("preset", GENERATOR_PRESET))
    values.update(extra)
    return cli_args(["generator", "--preset", preset], values)


@pytest.fixture(scope="session")
def cache_args():
    """Build the CLI arguments of the tiny latent cache (see :func:`cache_run_args`)."""
    return cache_run_args


@pytest.fixture(scope="session")
def generator_args():
    """Build the CLI arguments of the tiny generator run (see :func:`generator_run_args`)."""
    return generator_run_args


def _main_one_thread(args: list[str]) -> None:
    from freqlat.train.cli import main

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def latent_cache(tmp_path_factory):
    """The tiny latent cache, written in this process with one torch thread; its directory."""
    out = tmp_path_factory.mktemp("cache") / "kl"
    _main_one_thread(cache_run_args(out))
    return out


@pytest.fixture(scope="session")
def finished_generator_run(tmp_path_factory, latent_cache):
    """A complete tiny generator run on :func:`latent_cache`, trained in this process with one
    torch thread; its run directory."""
    run_dir = tmp_path_factory.mktemp("generator") / "run"
    _main_one_thread(generator_run_args(run_dir, latent_cache))
    return run_dir


def wait_for_first_checkpoint(
    processes: list[subprocess.Popen] | list[RankProcess], checkpoints: Path, timeout: float = 240.0
) -> None:
    """Poll until ``checkpoints`` holds a complete checkpoint; fail if a process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list_checkpoints(checkpoints):
            return
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"a run exited ({process.returncode}) before a checkpoint")
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint appeared in {checkpoints} in time")


@pytest.fixture
def first_checkpoint():
    """Wait for a run's first complete checkpoint (see :func:`wait_for_first_checkpoint`)."""
    return wait_for_first_checkpoint


@pytest.fixture(scope="session")
def token_cache(tmp_path_factory):
    """A token cache: 16 embedded 64 px crops through a random ``ms-vq-vae-tiny``, labelled by
    source photograph; its directory."""
    out = tmp_path_factory.mktemp("cache") / "vq"
    args = cache_run_args(
        out, tokenizer="random:ms-vq-vae-tiny", image_size=64, max_images=16, source_labels=True
    )
    _main_one_thread(args)
    return out

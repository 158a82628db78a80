"""Exact resume of generator training: a run SIGKILLed at a random step and restarted ends with the
weights, optimiser state, data position and RNGs of a run that never stopped, with one process
and with two gloo processes. The runs are new processes forked from a server that has imported
freqlat (``start_ranks``), so that a start costs no import time; ``test_cache_latents`` kills and
restarts the ``freqlat-train`` command itself."""

import json
import random
import signal
import time
from pathlib import Path

from freqlat.core import latest_checkpoint

STEPS = 12  # the tiny generator run's (conftest.generator_run_args)
WORLD_SIZE = 2
GENERATOR_STATE = {"weights": ("ema", "model"), "optimizers": ("optimizer",)}

# Every rank trains the runs given as a JSON list of CLI argument lists, in order, in one
# process group.
RANK_SCRIPT = """
import json
import sys

import torch

from freqlat.core import cleanup, init_distributed
from freqlat.train.cli import parse_overrides
from freqlat.train.generator_config import resolve_generator_config
from freqlat.train.generator_loop import train_generator

torch.set_num_threads(1)
ctx = init_distributed(use_cuda=False)
try:
    for args in json.loads(sys.argv[1]):
        train_generator(resolve_generator_config(args[2], parse_overrides(args[3:])), ctx)
finally:
    cleanup()
"""


def kill_at_a_random_step(processes, run_dir: Path) -> int:
    """SIGKILL ``processes`` once the run's log shows a random step between its first
    checkpoint (step 3) and the last one; returns that step."""
    step = random.Random().randint(4, STEPS - 3)
    log = run_dir / "train.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if log.is_file() and f"step {step}:" in log.read_text():
            break
        for process in processes:
            assert process.poll() is None, f"a run exited ({process.returncode}) before step {step}"
        time.sleep(0.005)
    for process in processes:
        process.send_signal(signal.SIGKILL)
    for process in processes:
        process.wait()
    return step


def test_one_process_run_killed_at_a_random_step_and_restarted_matches_the_unbroken_run(
    tmp_path, latent_cache, generator_args, finished_generator_run, start_ranks, same_training_state
):
    run_dir = tmp_path / "killed"
    args = [generator_args(run_dir, latent_cache)]
    logs = tmp_path / "logs"
    kill_at_a_random_step(start_ranks(RANK_SCRIPT, [json.dumps(args)], 1, logs), run_dir)
    killed_at = latest_checkpoint(run_dir / "checkpoints")
    assert killed_at is not None and killed_at.name != f"step_{STEPS:09d}"

    (process,) = start_ranks(RANK_SCRIPT, [json.dumps(args)], 1, logs)
    assert process.wait(timeout=600) == 0, (logs / "rank0.txt").read_text()[-3000:]
    assert f"resumed from {killed_at}" in (run_dir / "train.log").read_text()
    final = f"checkpoints/step_{STEPS:09d}"
    same_training_state(run_dir / final, finished_generator_run / final, **GENERATOR_STATE)


def test_two_process_run_killed_at_a_random_step_and_restarted_matches_the_unbroken_run(
    tmp_path, latent_cache, generator_args, start_ranks, same_training_state, same_rank_rngs
):
    reference, run_dir = tmp_path / "reference", tmp_path / "killed"
    logs = tmp_path / "logs"
    first = [generator_args(reference, latent_cache), generator_args(run_dir, latent_cache)]
    ranks = start_ranks(RANK_SCRIPT, [json.dumps(first)], WORLD_SIZE, logs)
    kill_at_a_random_step(ranks, run_dir)
    killed_at = latest_checkpoint(run_dir / "checkpoints")
    assert killed_at is not None and killed_at.name != f"step_{STEPS:09d}"

    ranks = start_ranks(RANK_SCRIPT, [json.dumps(first[1:])], WORLD_SIZE, logs)
    for rank, process in enumerate(ranks):
        assert process.wait(timeout=600) == 0, (logs / f"rank{rank}.txt").read_text()[-3000:]
    assert f"resumed from {killed_at}" in (run_dir / "train.log").read_text()
    final = f"checkpoints/step_{STEPS:09d}"
    same_training_state(run_dir / final, reference / final, **GENERATOR_STATE)
    same_rank_rngs(run_dir / final, reference / final, WORLD_SIZE)
    state = json.loads((run_dir / final / "meta.json").read_text())["metadata"]["config"]
    assert state["batch_size"] == 8  # the global batch: 4 per rank

"""Exact resume: a run killed with SIGKILL and restarted ends with the weights of an unbroken run."""

import random
import signal
import time

import torch

from freqlat.core import latest_checkpoint, list_checkpoints
from freqlat.core.checkpoint import TRAINING_STATE_FILE

STEPS = 12


def _wait_for_first_checkpoint(process, checkpoints, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list_checkpoints(checkpoints):
            return
        if process.poll() is not None:
            raise AssertionError(f"the run exited ({process.returncode}) before a checkpoint")
        time.sleep(0.01)
    raise AssertionError("no checkpoint appeared in time")


def test_sigkill_at_a_random_step_then_restart_matches_uninterrupted_run(
    tmp_path, tiny_args, finished_run, run_subprocess, single_thread_env, weights_of
):
    run_dir = tmp_path / "killed"
    args = tiny_args(run_dir)
    process = run_subprocess(args, single_thread_env, tmp_path / "logs")
    _wait_for_first_checkpoint(process, run_dir / "checkpoints")
    time.sleep(random.Random().uniform(0.0, 0.3))  # land anywhere in the next steps
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = latest_checkpoint(run_dir / "checkpoints")
    assert killed_at is not None and killed_at.name != f"step_{STEPS:09d}"

    process = run_subprocess(args, single_thread_env, tmp_path / "logs")
    assert process.wait(timeout=600) == 0, (tmp_path / "logs" / "out.txt").read_text()[-3000:]
    log = (tmp_path / "logs" / "out.txt").read_text()
    assert f"resumed from {killed_at}" in log

    final = run_dir / "checkpoints" / f"step_{STEPS:09d}"
    reference = finished_run / "checkpoints" / f"step_{STEPS:09d}"
    ours, theirs = weights_of(final), weights_of(reference)
    assert sorted(ours) == ["ema", "loss", "model"]
    for name in ours:
        assert ours[name].keys() == theirs[name].keys()
        for key in ours[name]:
            assert torch.equal(ours[name][key], theirs[name][key]), f"{name}/{key} differs"
    state = torch.load(final / TRAINING_STATE_FILE, weights_only=True)
    expected = torch.load(reference / TRAINING_STATE_FILE, weights_only=True)
    assert state["data"] == expected["data"]
    for group in ("ae_optimizer", "disc_optimizer"):
        for index, slot in expected[group]["state"].items():
            for key, value in slot.items():
                assert torch.equal(state[group]["state"][index][key], value), f"{group} {key}"

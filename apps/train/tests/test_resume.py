"""Exact resume: a run killed with SIGKILL and restarted ends with the weights of an unbroken run."""

import random
import signal
import time

from freqlat.core import latest_checkpoint

STEPS = 12


def test_sigkill_at_a_random_step_then_restart_matches_uninterrupted_run(
    tmp_path,
    tiny_args,
    finished_run,
    run_subprocess,
    single_thread_env,
    first_checkpoint,
    same_training_state,
):
    run_dir = tmp_path / "killed"
    args = tiny_args(run_dir)
    process = run_subprocess(args, single_thread_env, tmp_path / "logs")
    first_checkpoint([process], run_dir / "checkpoints")
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
    same_training_state(final, finished_run / "checkpoints" / f"step_{STEPS:09d}")

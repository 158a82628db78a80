"""Preemption of generator training: the timeout signal makes a run save at a step boundary and
requeue, and the requeued start ends where an unbroken run does."""

import os
import signal
import time

import pytest

from freqlat.core import init_distributed, launch, list_checkpoints
from freqlat.train.cli import parse_overrides
from freqlat.train.generator_config import resolve_generator_config
from freqlat.train.generator_loop import train_generator
from freqlat.train.job import GeneratorTrainingJob

STEPS = 12
GENERATOR_STATE = {"weights": ("ema", "model"), "optimizers": ("optimizer",)}


class Requeued(Exception):
    """Raised where submitit would requeue the job and exit."""


class SignalAt:
    """A stand-in for :class:`freqlat.core.PreemptionGuard` signalled before step ``step``."""

    def __init__(self, step: int) -> None:
        self.step, self.checks = step, 0

    def should_stop(self, device) -> bool:
        self.checks += 1
        return self.checks == self.step + 1

    def requeue(self) -> None:
        raise Requeued


def test_a_stop_request_saves_at_the_step_boundary_and_the_next_start_ends_as_unbroken(
    tmp_path, latent_cache, generator_args, finished_generator_run, same_training_state, one_thread
):
    args = generator_args(tmp_path / "run", latent_cache)
    config = resolve_generator_config(args[2], parse_overrides(args[3:]))
    ctx = init_distributed(use_cuda=False)
    with pytest.raises(Requeued):
        train_generator(config, ctx, SignalAt(7))  # between two checkpoints
    assert list_checkpoints(tmp_path / "run" / "checkpoints")[-1].name == "step_000000007"
    assert train_generator(config, ctx)["step"] == STEPS
    final = f"checkpoints/step_{STEPS:09d}"
    same_training_state(tmp_path / "run" / final, finished_generator_run / final, **GENERATOR_STATE)


@pytest.mark.slow
def test_timeout_signal_through_submitits_local_executor_requeues_and_resumes_exactly(
    tmp_path,
    latent_cache,
    generator_args,
    finished_generator_run,
    same_training_state,
    children_of,
    monkeypatch,
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = generator_args(tmp_path / "run", latent_cache, launcher="local-submitit")
    config = resolve_generator_config(args[2], parse_overrides(args[3:]))
    job = launch(GeneratorTrainingJob(config), config.launch_options(), tmp_path / "submitit")
    checkpoints = tmp_path / "run" / "checkpoints"
    deadline = time.monotonic() + 300
    while not list_checkpoints(checkpoints) and time.monotonic() < deadline:
        assert not job.done(), job.stderr()
        time.sleep(0.01)
    tasks = children_of(int(job.job_id))
    assert tasks, "no task process found under the submitit controller"
    for pid in tasks:
        os.kill(pid, signal.SIGUSR2)
    assert job.result()["step"] == STEPS
    assert "resumed from" in (tmp_path / "run" / "train.log").read_text()
    assert "Requeued job" in (job.stderr() or "") + (job.stdout() or "")
    final = f"checkpoints/step_{STEPS:09d}"
    same_training_state(tmp_path / "run" / final, finished_generator_run / final, **GENERATOR_STATE)

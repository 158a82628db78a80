"""A real submitit job sent the timeout signal checkpoints, requeues, and ends where an unbroken run does."""

import json
import os
import signal
import time

import pytest
import torch

from freqlat.core import launch, list_checkpoints
from freqlat.train import TokenizerTrainingJob, resolve_config

STEPS = 12


@pytest.mark.slow
def test_timeout_signal_checkpoints_requeues_and_resumes_exactly(
    tmp_path, finished_run, monkeypatch, weights_of, children_of
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    saved = json.loads((finished_run / "config.json").read_text())
    overrides = {k: v for k, v in saved.items() if k not in ("preset", "run_dir", "launcher")}
    config = resolve_config(
        saved["preset"],
        {**overrides, "run_dir": str(tmp_path / "run"), "launcher": "local-submitit"},
    )
    job = launch(TokenizerTrainingJob(config), config.launch_options(), tmp_path / "submitit")
    checkpoints = tmp_path / "run" / "checkpoints"
    deadline = time.monotonic() + 300
    while not list_checkpoints(checkpoints) and time.monotonic() < deadline:
        assert not job.done(), job.stderr()
        time.sleep(0.02)
    tasks = children_of(int(job.job_id))
    assert tasks, "no task process found under the submitit controller"
    for pid in tasks:
        os.kill(pid, signal.SIGUSR2)
    summary = job.result()
    assert summary["step"] == STEPS
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resumed from" in log
    assert "Requeued job" in (job.stderr() or "") + (job.stdout() or "")
    final = f"step_{STEPS:09d}"
    ours = weights_of(checkpoints / final)
    theirs = weights_of(finished_run / "checkpoints" / final)
    for name in ours:
        for key in ours[name]:
            assert torch.equal(ours[name][key], theirs[name][key]), f"{name}/{key} differs"

"""The training harness: LR schedule, precision, optimiser step, gradient all-reduce, throughput,
and the checkpoint/resume helper."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys

import pytest
import torch
from torch import nn

from freqlat.core.recipe import lr_factor
from freqlat.core.training import (
    RunCheckpoints,
    ThroughputMeter,
    autocast,
    grad_scaler,
    optimizer_step,
    set_learning_rate,
)

AVERAGE_SCRIPT = """
import sys
import torch
import torch.distributed as dist
from freqlat.core.training import all_reduce_gradients

dist.init_process_group("gloo")
rank = dist.get_rank()
a = torch.nn.Parameter(torch.zeros(2, 3))
b = torch.nn.Parameter(torch.zeros(4))
unused = torch.nn.Parameter(torch.zeros(1))
a.grad = torch.full((2, 3), float(rank + 1))
b.grad = torch.arange(4.0) * (rank + 1)
all_reduce_gradients([a, b, unused])
torch.save({"a": a.grad, "b": b.grad, "unused": unused.grad}, f"{sys.argv[1]}/rank{rank}.pt")
dist.destroy_process_group()
"""


def test_lr_schedule_is_linear_warmup_then_cosine_to_the_floor():
    kwargs = {"steps": 110, "warmup": 10, "schedule": "cosine", "min_ratio": 0.1}
    assert lr_factor(0, **kwargs) == pytest.approx(0.1)
    assert lr_factor(9, **kwargs) == pytest.approx(1.0)
    assert lr_factor(10, **kwargs) == pytest.approx(1.0)
    assert lr_factor(60, **kwargs) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_factor(110, **kwargs) == pytest.approx(0.1)
    assert lr_factor(50, steps=110, warmup=0, schedule="constant", min_ratio=0.0) == 1.0
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_factor(0, steps=1, warmup=0, schedule="linear", min_ratio=0.0)


def test_precisions_give_autocast_and_a_scaler_for_fp16_only():
    cpu = torch.device("cpu")
    with autocast("bf16", cpu):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast("fp32", cpu):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32
    assert not grad_scaler("fp32", cpu).is_enabled() and not grad_scaler("bf16", cpu).is_enabled()
    with pytest.raises(ValueError, match="precision"):
        autocast("fp8", cpu)


def test_optimizer_step_equals_a_plain_clipped_step():
    torch.manual_seed(0)
    ours, theirs = nn.Linear(4, 3), nn.Linear(4, 3)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(5, 4)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=0.1)
    opt_theirs = torch.optim.AdamW(theirs.parameters(), lr=0.1)
    assert set_learning_rate(opt_ours, 0.05) == 0.05
    for group in opt_theirs.param_groups:
        group["lr"] = 0.05
    norm = optimizer_step(
        ours(x).pow(2).sum(),
        opt_ours,
        grad_scaler("fp32", torch.device("cpu")),
        list(ours.parameters()),
        grad_clip=0.5,
    )
    theirs(x).pow(2).sum().backward()
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5)
    opt_theirs.step()
    assert torch.equal(norm, expected)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)


def test_throughput_leaves_out_the_first_step_and_counts_data_waits():
    meter = ThroughputMeter(batch_size=4)
    with meter.waiting():
        pass
    assert meter.interval() == {} and meter.waited == 0.0  # nothing before the first step
    meter.step_done()
    for _ in range(3):
        with meter.waiting():
            pass
        meter.step_done()
    values = meter.interval()
    assert meter.steps == 3 and values["time/images_per_s"] > 0
    assert 0 <= values["time/data_wait_fraction"] <= 1
    assert meter.interval() == {}  # no step since the last call
    assert meter.total()["time/images_per_s"] > 0


def test_run_checkpoints_resume_the_latest_step_and_skip_a_second_save(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    checkpoints = RunCheckpoints(
        tmp_path / "ckpt", weights={"model": model}, states={"opt": optimizer}, keep_last=1
    )
    assert checkpoints.resume() == 0 and checkpoints.saved_step == 0
    checkpoints.stop_if_requested(None, 0, torch.device("cpu"), dict)  # no guard: nothing
    checkpoints.save(3, {"note": "three"})
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    again = RunCheckpoints(tmp_path / "ckpt", weights={"model": model}, states={"opt": optimizer})
    assert again.resume() == 3 and again.saved_step == 3
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_gradients_are_averaged_over_ranks(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(AVERAGE_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", str(_free_port()), str(script), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        grads = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert torch.equal(grads["a"], torch.full((2, 3), 1.5))
        assert torch.equal(grads["b"], torch.arange(4.0) * 1.5)
        assert grads["unused"] is None

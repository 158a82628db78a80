"""Atomic step checkpoints: round trip, exact resume, latest resolution, retention."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from freqlat.core import checkpoint as ckpt
from freqlat.core.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from freqlat.core.distributed import seed_everything
from freqlat.core.ema import EMA
from freqlat.core.rng import capture_rng_state, restore_rng_state
from freqlat.core.sampler import ResumableLoader


class VectorDataset(Dataset):
    """Fixed random 12-vectors; a flip key reverses the vector."""

    def __init__(self) -> None:
        self.data = torch.randn(10, 12, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key):
        index, flip = key
        vector = self.data[index]
        return (vector.flip(0) if flip else vector), index


def _train(root: Path, total_steps: int, crash_after: int | None = None) -> dict[str, torch.Tensor]:
    """A tiny training run that draws from every RNG and resumes from root's latest checkpoint."""
    seed_everything(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.Dropout(0.3), nn.Linear(16, 12))
    ema = EMA(model, decay=0.8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu")
    loader = ResumableLoader(VectorDataset(), 3, seed=1, random_flip=True)
    weights = {"model": model, "ema": ema}
    states = {"optimizer": optimizer, "scaler": scaler, "data": loader}
    step = 0
    latest = latest_checkpoint(root)
    if latest is not None:
        step = load_checkpoint(latest, weights=weights, states=states).step
    for x, _ in loader:
        if step == total_steps:
            break
        noisy = x + 0.1 * torch.randn_like(x)
        weight = random.random() + float(np.random.rand())  # noqa: NPY002
        loss = weight * (model(noisy) - x).pow(2).mean()
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        ema.update(model)
        step += 1
        save_checkpoint(root, step, weights=weights, states=states, keep_last=2)
        if step == crash_after:
            break
    return {**model.state_dict(), **{f"ema.{k}": v for k, v in ema.state_dict().items()}}


def test_resumed_run_reaches_the_same_weights_as_an_uninterrupted_one(tmp_path: Path):
    straight = _train(tmp_path / "straight", 8)
    _train(tmp_path / "interrupted", 8, crash_after=3)
    _train(tmp_path / "interrupted", 8, crash_after=5)
    resumed = _train(tmp_path / "interrupted", 8)
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_round_trip_restores_weights_states_metadata_and_rng(tmp_path: Path):
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    path = save_checkpoint(
        tmp_path,
        7,
        weights={"model": model},
        states={"optimizer": optimizer},
        metadata={"config": {"lr": 0.1, "name": "tiny"}},
    )
    assert path.name == "step_000000007"
    expected_draws = (random.random(), torch.rand(3))

    fresh = nn.Linear(4, 3)
    fresh_optimizer = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    info = load_checkpoint(path, weights={"model": fresh}, states={"optimizer": fresh_optimizer})
    assert info.step == 7 and info.metadata == {"config": {"lr": 0.1, "name": "tiny"}}
    assert torch.equal(fresh.weight, model.weight)
    assert torch.equal(
        fresh_optimizer.state_dict()["state"][0]["momentum_buffer"],
        optimizer.state_dict()["state"][0]["momentum_buffer"],
    )
    assert random.random() == expected_draws[0]
    assert torch.equal(torch.rand(3), expected_draws[1])


def test_training_state_loads_with_weights_only(tmp_path: Path):
    model = nn.Linear(2, 2)
    path = save_checkpoint(tmp_path, 1, states={"optimizer": torch.optim.Adam(model.parameters())})
    for name in (ckpt.TRAINING_STATE_FILE, ckpt.rng_file_name(0)):
        torch.load(path / name, weights_only=True)


def test_rng_state_round_trips_through_tensors():
    state = capture_rng_state()
    draws = (random.random(), np.random.rand(), torch.rand(2))  # noqa: NPY002
    restore_rng_state(state)
    assert random.random() == draws[0]
    assert np.random.rand() == draws[1]  # noqa: NPY002
    assert torch.equal(torch.rand(2), draws[2])


def test_half_written_checkpoints_are_never_latest(tmp_path: Path, monkeypatch):
    model = nn.Linear(2, 2)
    save_checkpoint(tmp_path, 2, weights={"model": model})
    # A copy that lost its marker and a temp dir left by a crash mid-write.
    save_checkpoint(tmp_path, 4, weights={"model": model})
    (tmp_path / "step_000000004" / ckpt.COMPLETE_MARKER).unlink()
    (tmp_path / ".tmp-step_000000009").mkdir()
    (tmp_path / ".tmp-step_000000009" / "model.safetensors").write_bytes(b"partial")

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(ckpt.os, "rename", crash)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(tmp_path, 6, weights={"model": model})
    monkeypatch.setattr(ckpt.os, "rename", os.rename)

    assert latest_checkpoint(tmp_path) == tmp_path / "step_000000002"
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        read_metadata(tmp_path / "step_000000004")


def test_only_the_last_n_checkpoints_are_kept(tmp_path: Path):
    model = nn.Linear(2, 2)
    (tmp_path / ".tmp-step_000000001").mkdir(parents=True)
    for step in range(1, 6):
        save_checkpoint(tmp_path, step, weights={"model": model}, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000004", "step_000000005"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_000000004", "step_000000005"]


def test_saving_a_step_again_replaces_it(tmp_path: Path):
    model = nn.Linear(2, 2)
    save_checkpoint(tmp_path, 3, weights={"model": model}, metadata={"take": 1})
    save_checkpoint(tmp_path, 3, weights={"model": model}, metadata={"take": 2})
    assert read_metadata(latest_checkpoint(tmp_path)).metadata == {"take": 2}
    assert len(list(tmp_path.iterdir())) == 1


def test_bad_requests_are_clear_errors(tmp_path: Path):
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path, 1, weights={"model": model}, metadata={"bad": object()})
    path = save_checkpoint(tmp_path, 1, weights={"model": model})
    with pytest.raises(FileNotFoundError, match="no weights 'ema'"):
        load_checkpoint(path, weights={"ema": model})
    with pytest.raises(ValueError, match="no state 'optimizer'"):
        load_checkpoint(path, states={"optimizer": torch.optim.SGD(model.parameters(), lr=1)})
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_checkpoint(path, weights={"model": nn.Linear(3, 2)})
    assert latest_checkpoint(tmp_path / "nothing-here") is None

"""EMA: the update rule, buffer handling, state round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from freqlat.core.ema import EMA


def _set_weights(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def test_first_update_copies_and_later_updates_follow_the_ema_rule():
    model = nn.Linear(3, 2)
    ema = EMA(model, decay=0.9)
    _set_weights(model, 1.0)
    ema.update(model)
    assert all(torch.equal(p, torch.ones_like(p)) for p in ema.module.parameters())
    _set_weights(model, 3.0)
    ema.update(model)
    _set_weights(model, -2.0)
    ema.update(model)
    # 1 -> 0.9 * 1 + 0.1 * 3 = 1.2 -> 0.9 * 1.2 + 0.1 * (-2) = 0.88
    for p in ema.module.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.88), atol=1e-6)
    assert ema.num_updates == 3


def test_buffers_are_copied_not_averaged():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    ema = EMA(model, decay=0.99)
    for _ in range(3):
        model(torch.randn(8, 4))
        ema.update(model)
    bn, ema_bn = model[1], ema.module[1]
    assert torch.equal(ema_bn.running_mean, bn.running_mean)
    assert int(ema_bn.num_batches_tracked) == 3


def test_state_round_trip_and_copy_to():
    model = nn.Linear(3, 3)
    ema = EMA(model, decay=0.5)
    ema.update(model)
    _set_weights(model, 2.0)
    ema.update(model)
    restored = EMA(nn.Linear(3, 3), decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 2
    target = nn.Linear(3, 3)
    restored.copy_to(target)
    for p, q in zip(target.parameters(), ema.module.parameters(), strict=True):
        assert torch.equal(p, q)


def test_ema_copy_does_not_track_gradients_and_decay_is_checked():
    ema = EMA(nn.Linear(2, 2))
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(ValueError, match="decay"):
        EMA(nn.Linear(2, 2), decay=1.5)

"""The rectified-flow objective and the samplers, on closed-form flows and model stubs."""

import itertools
import math

import pytest
import torch
from torch import nn

from freqlat.generators import (
    create_generator,
    flow_matching_loss,
    flow_timesteps,
    guided_velocity,
    sample_flow,
    seeded_noise,
    shift_timesteps,
)
from freqlat.generators.flow import sample_times


class _Field(nn.Module):
    """A velocity field v(x, t) standing in for a model; records the batch size of each call."""

    null_class = 10

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.calls: list[int] = []

    def forward(self, x, t, y):
        self.calls.append(len(x))
        return self.fn(x, t, y)


class _LabelField(_Field):
    """Velocity = label-dependent constant per channel: cond (label + 1) * (channel + 1), null 0.5."""

    def __init__(self):
        def velocity(x, t, y):
            level = torch.where(y == self.null_class, 0.5, y.float() + 1)
            channels = torch.arange(1, x.shape[1] + 1, dtype=x.dtype)
            return level.view(-1, 1, 1, 1) * channels.view(1, -1, 1, 1) * torch.ones_like(x)

        super().__init__(velocity)


def _noise(n=2, c=5, size=3, seed=0):
    return torch.randn(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def test_shift_formula_and_grid():
    t = torch.linspace(0, 1, 11)
    for s in (0.3, 1.0, 3.0):
        torch.testing.assert_close(shift_timesteps(t, s), s * t / (1 + (s - 1) * t))
    grid = flow_timesteps(5, 0.3)
    assert len(grid) == 5 and grid[0] == 0 and grid[-1] == 1
    torch.testing.assert_close(grid[1], torch.tensor(0.3 * 0.25 / (1 - 0.7 * 0.25)))
    assert torch.equal(flow_timesteps(7, 1.0), torch.linspace(0, 1, 7))
    assert (flow_timesteps(9, 0.3)[1:-1] < torch.linspace(0, 1, 9)[1:-1]).all()  # toward noise
    with pytest.raises(ValueError, match="grid points"):
        flow_timesteps(1)
    with pytest.raises(ValueError, match="positive"):
        shift_timesteps(t, 0.0)


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("shift", [1.0, 0.3])
def test_both_methods_are_exact_on_straight_flows(method, shift):
    # A constant field, and the flow of a single data point x1, v = (x1 - x) / (1 - t): both
    # carry every point along a straight line, which Euler and Heun follow exactly.
    noise = _noise()
    constant = torch.linspace(-1, 1, 5).view(1, 5, 1, 1)
    field = _Field(lambda x, t, y: constant.expand_as(x))
    result = sample_flow(field, noise, torch.zeros(2), steps=7, method=method, timestep_shift=shift)
    torch.testing.assert_close(result, noise + constant)
    x1 = _noise(seed=1)
    point = _Field(lambda x, t, y: (x1 - x) / (1 - t.view(-1, 1, 1, 1)))
    result = sample_flow(point, noise, torch.zeros(2), steps=6, method=method, timestep_shift=shift)
    torch.testing.assert_close(result, x1, rtol=0, atol=1e-5)


def _error(method: str, steps: int) -> float:
    noise = _noise().double()
    field = _Field(lambda x, t, y: -x * (1 + t.view(-1, 1, 1, 1)))  # x(1) = x(0) exp(-3/2)
    result = sample_flow(field, noise, torch.zeros(2), steps=steps, method=method)
    return (result - noise * math.exp(-1.5)).abs().max().item()


def test_euler_is_first_order_and_heun_second_order():
    euler = [_error("euler", n + 1) for n in (16, 32, 64)]
    heun = [_error("heun", n + 1) for n in (16, 32, 64)]
    for coarse, fine in itertools.pairwise(euler):
        assert math.log2(coarse / fine) == pytest.approx(1.0, abs=0.1)
    for coarse, fine in itertools.pairwise(heun):
        assert math.log2(coarse / fine) == pytest.approx(2.0, abs=0.15)


def test_heun_evaluates_the_model_twice_per_step_but_once_into_t_equals_one():
    field = _Field(lambda x, t, y: torch.zeros_like(x))
    sample_flow(field, _noise(), torch.zeros(2), steps=5, method="heun")
    assert len(field.calls) == 2 * 5 - 3
    field.calls.clear()
    sample_flow(field, _noise(), torch.zeros(2), steps=5)
    assert len(field.calls) == 4


def test_cfg_arithmetic_on_the_first_three_channels_or_all():
    stub = _LabelField()
    x, t, y = _noise(), torch.full((2,), 0.5), torch.tensor([0, 3])
    cond, uncond = stub(x, t, y), stub(x, t, torch.full_like(y, 10))
    guided = uncond + 4.0 * (cond - uncond)
    three = guided_velocity(stub, x, t, y, cfg_scale=4.0)
    torch.testing.assert_close(three[:, :3], guided[:, :3])
    torch.testing.assert_close(three[:, 3:], cond[:, 3:])
    every = guided_velocity(stub, x, t, y, cfg_scale=4.0, guidance_channels=None)
    torch.testing.assert_close(every, guided)


def test_cfg_interval_is_tested_on_t_and_skips_the_unconditional_pass_below_it():
    stub = _LabelField()
    x, y = _noise(), torch.tensor([0, 3])
    cond = stub(x, torch.zeros(2), y)
    stub.calls.clear()
    below = guided_velocity(
        stub, x, torch.full((2,), 0.09), y, cfg_scale=4.0, cfg_interval_start=0.1
    )
    torch.testing.assert_close(below, cond)
    assert stub.calls == [2]
    mixed = guided_velocity(
        stub, x, torch.tensor([0.05, 0.5]), y, cfg_scale=4.0, cfg_interval_start=0.1
    )
    torch.testing.assert_close(mixed[0], cond[0])
    assert not torch.allclose(mixed[1, :3], cond[1, :3])
    stub.calls.clear()
    guided_velocity(stub, x, torch.full((2,), 0.5), y, cfg_scale=1.0)
    assert stub.calls == [2]  # no unconditional pass at scale 1


def test_sampler_applies_the_interval_to_the_shifted_grid():
    # With shift 0.3 the grid of 5 points is 0, 0.091, 0.231, 0.474, 1: guidance starting at
    # 0.1 skips the updates from t = 0 and t = 0.091, though the unshifted t = 0.25 is guided.
    stub = _LabelField()
    noise, y = _noise(), torch.tensor([0, 3])
    sample_flow(stub, noise, y, steps=5, cfg_scale=2.0, cfg_interval_start=0.1, timestep_shift=0.3)
    assert stub.calls == [2, 2, 4, 4]
    stub.calls.clear()
    sample_flow(stub, noise, y, steps=5, cfg_scale=2.0, cfg_interval_start=0.1)
    assert stub.calls == [2, 4, 4, 4]


def test_seeded_noise_does_not_depend_on_the_batch():
    both = seeded_noise([5, 9], (4, 3, 3))
    torch.testing.assert_close(both[1], seeded_noise([9], (4, 3, 3))[0])
    assert not torch.equal(both[0], both[1])


def test_time_sampling_is_logit_normal_or_uniform_and_seeded():
    g = torch.Generator().manual_seed(0)
    t = sample_times(20000, "logit-normal", g)
    logit = torch.log(t / (1 - t))
    assert abs(logit.mean().item()) < 0.03 and abs(logit.std().item() - 1) < 0.03
    u = sample_times(20000, "uniform", g)
    assert abs(u.mean().item() - 0.5) < 0.01 and abs(u.var().item() - 1 / 12) < 0.003
    with pytest.raises(ValueError, match="time sampling"):
        sample_times(3, "beta")


def test_loss_is_mse_plus_one_minus_cosine_along_channels():
    x1, x0 = _noise(seed=1), _noise(seed=2)
    t = torch.tensor([0.2, 0.7])
    field = _Field(lambda x, t, y: 2 * x)
    terms = flow_matching_loss(field, x1, torch.zeros(2), x0=x0, t=t)
    xt = t.view(-1, 1, 1, 1) * x1 + (1 - t.view(-1, 1, 1, 1)) * x0
    v, u = 2 * xt, x1 - x0
    cos = (v * u).sum(1) / (v.norm(dim=1) * u.norm(dim=1))
    torch.testing.assert_close(terms["mse"], (v - u).square().mean())
    torch.testing.assert_close(terms["cosine"], (1 - cos).mean())
    torch.testing.assert_close(terms["loss"], terms["mse"] + terms["cosine"])
    plain = flow_matching_loss(field, x1, torch.zeros(2), x0=x0, t=t, cosine_loss=False)
    torch.testing.assert_close(plain["loss"], terms["mse"])
    same = [
        flow_matching_loss(field, x1, torch.zeros(2), generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    ]
    torch.testing.assert_close(same[0]["loss"], same[1]["loss"])
    with pytest.raises(ValueError, match="must match x1"):
        flow_matching_loss(field, x1, torch.zeros(2), x0=x0[:1], t=t)


def test_loss_falls_when_training_a_tiny_model_on_fixed_latents():
    torch.manual_seed(0)
    model = create_generator(
        "lightningdit-tiny", input_size=4, in_channels=4, hidden_size=64, depth=2, num_classes=4
    )
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(16) % 4
    centres = torch.randn(4, 4, 4, 4, generator=g)
    latents = centres[labels] + 0.1 * torch.randn(16, 4, 4, 4, generator=g)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0)
    losses = []
    for _ in range(300):
        loss = flow_matching_loss(model, latents, labels, generator=g)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:30]) / 30, sum(losses[-30:]) / 30
    assert last < 0.6 * first, (first, last)

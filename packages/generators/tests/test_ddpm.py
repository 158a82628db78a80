"""DDPM: the schedule against closed forms, the objective, DDIM and ancestral sampling."""

import math

import pytest
import torch
from torch import nn

from freqlat.generators import (
    DDPMObjective,
    DDPMSchedule,
    DDPMScheduleConfig,
    create_generator,
    ddim_timesteps,
    per_sample_normal,
    sample_ddim,
    sample_ddpm,
)


class _Stub(nn.Module):
    """A model whose eps is ``eps + label_gain * y`` (per sample); it records every call."""

    null_class = 10

    def __init__(self, eps, label_gain=0.0):
        super().__init__()
        self.eps, self.label_gain, self.calls = eps, label_gain, []

    def forward(self, x, t, y, drop=None):
        self.calls.append((x.clone(), t.clone(), y.clone()))
        eps = self.eps if self.eps.shape[0] == x.shape[0] else self.eps.repeat(2, 1, 1, 1)
        return eps + self.label_gain * y.float().view(-1, 1, 1, 1)


def _schedule(**overrides):
    return DDPMSchedule(DDPMScheduleConfig(**overrides))


def test_linear_schedule_matches_its_closed_form_in_float64():
    schedule = _schedule()
    lo, hi = math.sqrt(0.0015), math.sqrt(0.0195)
    for i in (0, 1, 500, 998, 999):
        assert schedule.betas[i].item() == pytest.approx((lo + i * (hi - lo) / 999) ** 2, 1e-14)
    product = 1.0
    for i, beta in enumerate(schedule.betas.tolist()):
        product *= 1.0 - beta
        if i in (0, 10, 999):
            assert schedule.alphas_cumprod_f64[i].item() == pytest.approx(product, rel=1e-12)
    # the coefficients are float32 casts of their float64 values, as upstream stores them
    f64 = schedule.alphas_cumprod_f64
    assert schedule.alphas_cumprod.dtype == torch.float32
    assert torch.equal(schedule.alphas_cumprod, f64.float())
    assert torch.equal(schedule.sqrt_recipm1_alphas_cumprod, (1 / f64 - 1).sqrt().float())
    prev = torch.cat([f64.new_ones(1), f64[:-1]])
    variance = schedule.betas * (1 - prev) / (1 - f64)
    assert schedule.posterior_log_variance_clipped[0].item() == pytest.approx(math.log(1e-20))
    torch.testing.assert_close(
        schedule.posterior_log_variance_clipped[1:], variance[1:].log().float()
    )


def test_q_sample_is_the_closed_form_marginal():
    schedule = _schedule()
    x0, noise = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    t = torch.tensor([0, 999])
    a = schedule.alphas_cumprod_f64[t].view(2, 1, 1, 1)
    expected = a.sqrt() * x0.double() + (1 - a).sqrt() * noise.double()
    torch.testing.assert_close(schedule.q_sample(x0, t, noise).double(), expected)


def test_ddim_grid_is_upstreams_uniform_grid_plus_one():
    assert ddim_timesteps(6).tolist() == [1, 167, 333, 499, 665, 831, 997]
    assert ddim_timesteps(250).tolist() == list(range(1, 1000, 4))
    assert len(ddim_timesteps(200)) == 200 and len(ddim_timesteps(150)) == 167
    with pytest.raises(ValueError, match="would reach t = 1000"):
        ddim_timesteps(501)
    for steps in (3, 9, 27, 300):  # 999 is on these grids (strides 333, 111, 37, 3): 1000 too
        with pytest.raises(ValueError, match="would reach t = 1000"):
            ddim_timesteps(steps)
    assert ddim_timesteps(4).tolist() == [1, 251, 501, 751]
    with pytest.raises(ValueError, match="positive int"):
        ddim_timesteps(0)


def test_ddim_with_the_true_eps_lands_on_the_closed_form_at_alpha_0():
    # x_T built from known x0 and eps; a model answering that eps makes every DDIM step
    # predict x0 exactly, and the last step ends at alpha_prev = alphas_cumprod[0], not 1.
    schedule = _schedule()
    x0, eps = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    a_first = schedule.alphas_cumprod_f64[997]
    noise = (a_first.sqrt() * x0.double() + (1 - a_first).sqrt() * eps.double()).float()
    model = _Stub(eps).eval()
    out = sample_ddim(model, noise, torch.zeros(2, dtype=torch.long), steps=6, schedule=schedule)
    a0 = schedule.alphas_cumprod_f64[0]
    expected = a0.sqrt() * x0.double() + (1 - a0).sqrt() * eps.double()
    # float32 steps: the first divides by sqrt(abar_997) ~ 0.07, so rounding grows ~15-fold
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-4)
    assert [int(t[0]) for _, t, _ in model.calls] == [997, 831, 665, 499, 333, 167, 1]


def test_ddim_with_eta_zero_is_deterministic(ldm_reference):
    torch.manual_seed(0)
    model = ldm_reference.randomize_(create_generator("ldm-tiny", latent_channels=4)).eval()
    noise, labels = torch.randn(2, 4, 4, 4), torch.tensor([3, 1000])
    first = sample_ddim(model, noise, labels, steps=5, cfg_scale=2.0)
    assert torch.equal(first, sample_ddim(model, noise, labels, steps=5, cfg_scale=2.0))
    assert first.dtype == torch.float32 and first.shape == noise.shape


def test_guidance_runs_one_batch_uncond_then_cond_and_extrapolates():
    eps = torch.randn(2, 3, 4, 4)
    noise, labels = torch.randn(2, 3, 4, 4), torch.tensor([2, 7])
    guided_model = _Stub(eps, label_gain=0.1).eval()
    schedule = _schedule()
    guided = sample_ddim(guided_model, noise, labels, steps=10, cfg_scale=4.0, schedule=schedule)
    x, t, y = guided_model.calls[0]
    assert x.shape[0] == 4 and torch.equal(x[:2], x[2:]) and torch.equal(t[:2], t[2:])
    assert y.tolist() == [10, 10, 2, 7]
    # eps is linear in the label, so guidance = the stub at label null + 4 * (y - null)
    plain = _Stub(eps, label_gain=0.1).eval()
    expected = sample_ddim(plain, noise, 10 + 4 * (labels - 10), steps=10, schedule=schedule)
    torch.testing.assert_close(guided, expected, rtol=1e-5, atol=1e-5)
    assert len(plain.calls) == 10 and plain.calls[0][0].shape[0] == 2  # no guidance: N rows


def test_samplers_refuse_train_mode_and_missing_generators():
    model = _Stub(torch.zeros(1, 3, 4, 4))
    noise, labels = torch.zeros(1, 3, 4, 4), torch.zeros(1, dtype=torch.long)
    with pytest.raises(ValueError, match=r"model\.eval\(\)"):
        sample_ddim(model, noise, labels, steps=4)
    model.eval()
    with pytest.raises(ValueError, match=r"one torch\.Generator per sample"):
        sample_ddim(model, noise, labels, steps=4, eta=1.0)
    with pytest.raises(ValueError, match=r"one torch\.Generator per sample"):
        sample_ddpm(model, noise, labels, generators=[])
    with pytest.raises(ValueError, match="expected 1 labels"):
        sample_ddim(model, noise, labels.repeat(2), steps=4)


def _generators(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.mark.parametrize("sampler", ["ddpm", "ddim-eta"])
def test_stochastic_samples_depend_on_their_own_seed_only(ldm_reference, sampler):
    torch.manual_seed(0)
    model = ldm_reference.randomize_(
        create_generator("ldm-tiny", latent_channels=4, schedule={"num_timesteps": 20})
    ).eval()
    noise = per_sample_normal(_generators(5, 6, 7), (4, 4, 4))
    labels = torch.tensor([1, 2, 1000])

    def run(rows, seeds):
        if sampler == "ddpm":
            return sample_ddpm(model, noise[rows], labels[rows], generators=_generators(*seeds))
        gens = _generators(*seeds)
        return sample_ddim(model, noise[rows], labels[rows], steps=5, eta=1.0, generators=gens)

    batch = run([0, 1, 2], (10, 11, 12))
    assert batch.shape == noise.shape and torch.isfinite(batch).all()
    torch.testing.assert_close(run([1], (11,)), batch[1:2], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(run([1], (99,)), batch[1:2])


def test_per_sample_noise_is_independent_of_the_batch():
    together = per_sample_normal(_generators(1, 2), (3, 2, 2))
    assert torch.equal(together[1], per_sample_normal(_generators(2), (3, 2, 2))[0])


def test_objective_is_reproducible_and_dropout_comes_from_its_generator(ldm_reference):
    torch.manual_seed(0)
    model = ldm_reference.randomize_(
        create_generator("ldm-tiny", latent_channels=4, class_dropout_prob=0.5)
    )
    objective = DDPMObjective(model.schedule)
    x0, labels = torch.randn(4, 4, 4, 4), torch.tensor([0, 1, 2, 3])
    losses = [objective(model, x0, labels, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert set(losses[0]) == {"loss", "mse"} and losses[0]["loss"].requires_grad
    assert torch.equal(losses[0]["loss"], losses[1]["loss"])
    assert not losses[0]["mse"].requires_grad
    torch.manual_seed(1)
    other = objective(model, x0, labels, torch.Generator().manual_seed(4))["loss"]
    assert not torch.equal(other, losses[0]["loss"])


def test_objective_loss_falls_on_the_tiny_model():
    torch.manual_seed(0)
    model = create_generator("ldm-tiny", latent_channels=4, class_dropout_prob=0.1)
    objective = DDPMObjective(model.schedule)
    # structured latents: a smooth pattern per class, as a tokenizer's would be
    grid = torch.linspace(-1, 1, 4)
    pattern = torch.sin(3 * grid[:, None] + grid[None, :])
    labels = torch.arange(8) % 4
    x0 = torch.stack([pattern * (1 + c) / 2 + 0.3 * c for c in range(4)])[labels]
    x0 = x0[:, None].repeat(1, 4, 1, 1)
    held_out = torch.Generator().manual_seed(1)
    t = torch.randint(0, 1000, (64,), generator=held_out)
    noise = torch.randn(64, 4, 4, 4, generator=held_out)
    big, big_labels = x0.repeat(8, 1, 1, 1), labels.repeat(8)

    def held_out_loss():
        model.eval()
        with torch.no_grad():
            return objective.loss_at(model, big, big_labels, t, noise)["loss"].item()

    before = held_out_loss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(15):
        loss = objective(model, x0, labels, generator)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = held_out_loss()
    assert before == pytest.approx(1.0, abs=0.2)  # zero-initialised output: eps_hat = 0
    assert after < 0.7 * before  # 0.50 after 15 steps

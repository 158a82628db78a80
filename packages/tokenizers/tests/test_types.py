"""The shared result types: the diagonal Gaussian posterior's definition."""

import torch
from torch.distributions import Normal, kl_divergence

from freqlat.tokenizers import DiagonalGaussian


def test_kl_matches_torch_distributions_summed_per_sample():
    mean, logvar = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    posterior = DiagonalGaussian(mean, logvar)
    expected = kl_divergence(Normal(mean, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    torch.testing.assert_close(posterior.kl(), expected.flatten(1).sum(1), rtol=1e-5, atol=1e-5)


def test_kl_is_zero_for_the_standard_normal():
    posterior = DiagonalGaussian(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))
    assert torch.equal(posterior.kl(), torch.zeros(2))


def test_logvar_is_clamped_to_ldm_range():
    moments = torch.cat(
        [torch.zeros(1, 2, 1, 1), torch.tensor([-100.0, 100.0]).view(1, 2, 1, 1)], 1
    )
    posterior = DiagonalGaussian.from_moments(moments)
    assert posterior.logvar.flatten().tolist() == [-30.0, 20.0]
    assert torch.equal(posterior.mode(), posterior.mean)


def test_sample_is_reparameterised_and_seeded():
    mean = torch.zeros(2, 3, 4, 4, requires_grad=True)
    logvar = torch.zeros(2, 3, 4, 4, requires_grad=True)
    posterior = DiagonalGaussian(mean, logvar)
    first = posterior.sample(torch.Generator().manual_seed(1))
    second = posterior.sample(torch.Generator().manual_seed(1))
    assert torch.equal(first, second)
    first.sum().backward()
    assert mean.grad is not None and logvar.grad is not None


def test_odd_moment_channels_are_rejected():
    try:
        DiagonalGaussian.from_moments(torch.zeros(1, 3, 2, 2))
    except ValueError as error:
        assert "even channel count" in str(error)
    else:
        raise AssertionError("odd channel count accepted")

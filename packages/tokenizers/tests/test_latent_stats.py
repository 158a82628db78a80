"""Latent statistics: Welford merging against direct moments, per-branch global scales."""

import pytest
import torch

from freqlat.tokenizers import LatentStatistics


def _batches():
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.5, 1.0, 2.0, 4.0]).view(1, 4, 1, 1)
    return [torch.randn(n, 4, 3, 3, generator=generator) * scales + 1.0 for n in (2, 5, 3)]


def test_running_moments_equal_the_direct_ones():
    stats = LatentStatistics(4, {"first": (0, 1), "rest": (1, 4)})
    for batch in _batches():
        stats.update(batch)
    everything = torch.cat(_batches()).double()
    per_channel = everything.transpose(0, 1).reshape(4, -1)
    torch.testing.assert_close(stats.channel_mean, per_channel.mean(1).float())
    torch.testing.assert_close(stats.channel_std, per_channel.std(1, unbiased=False).float())
    rest = everything[:, 1:]
    mean, std = stats.group_moments("rest")
    assert mean == pytest.approx(rest.mean().item(), rel=1e-12)
    assert std == pytest.approx(rest.std(unbiased=False).item(), rel=1e-12)
    assert stats.group_scale("first") == pytest.approx(
        1 / per_channel[0].std(unbiased=False).item()
    )


def test_merging_accumulators_equals_one_pass():
    whole, left, right = LatentStatistics(4), LatentStatistics(4), LatentStatistics(4)
    batches = _batches()
    for batch in batches:
        whole.update(batch)
    left.update(batches[0])
    for batch in batches[1:]:
        right.update(batch)
    left.merge(right)
    torch.testing.assert_close(left.mean, whole.mean)
    torch.testing.assert_close(left.m2, whole.m2)


@pytest.mark.parametrize("mode", ["channel", "global"])
def test_normalize_round_trip_and_unit_spread(mode):
    stats = LatentStatistics(4)
    batch = torch.cat(_batches())
    stats.update(batch)
    normalized = stats.normalize(batch, mode)
    torch.testing.assert_close(stats.denormalize(normalized, mode), batch)
    if mode == "channel":
        torch.testing.assert_close(
            normalized.transpose(0, 1).reshape(4, -1).std(1, unbiased=False),
            torch.ones(4),
            rtol=1e-5,
            atol=1e-5,
        )


def test_state_round_trips_through_a_dict():
    stats = LatentStatistics(4)
    stats.update(_batches()[0])
    again = LatentStatistics.from_dict(stats.to_dict())
    assert again.count == stats.count and torch.equal(again.m2, stats.m2)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="N x 4 x h x w"):
        LatentStatistics(4).update(torch.zeros(2, 3, 1, 1))
    with pytest.raises(ValueError, match="at least two"):
        _ = LatentStatistics(4).channel_std

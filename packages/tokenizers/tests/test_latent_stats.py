"""Latent statistics: Welford merging against direct moments, per-branch global scales, and the
statistics of a tokenizer's latents over image batches."""

import pytest
import torch

from freqlat.tokenizers import LatentStatistics, compute_latent_statistics, create_tokenizer


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


def _images(count: int, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(count)
    return torch.rand(count, 3, size, size, generator=generator) * 2 - 1


def test_statistics_are_the_moments_of_every_latent_value(tiny_models):
    fa_vae = tiny_models["fa-vae-f16d32-tiny"]
    images = _images(5)
    stats = compute_latent_statistics(fa_vae, iter(images.split(2)), flip=True)
    with torch.no_grad():
        everything = torch.cat([images, images.flip(-1)])
        latents = fa_vae.encode(everything).mode().double()
    per_channel = latents.transpose(0, 1).flatten(1)
    assert stats.count == per_channel.shape[1] == 10 * 2 * 2
    torch.testing.assert_close(
        stats.channel_mean.double(), per_channel.mean(1), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(
        stats.channel_std.double(), per_channel.std(1, unbiased=False), rtol=1e-5, atol=1e-6
    )
    for name, (start, stop) in fa_vae.latent_groups().items():
        values = per_channel[start:stop]
        assert stats.group_scale(name) == pytest.approx(
            1 / values.std(unbiased=False).item(), rel=1e-5
        )


def test_posterior_samples_are_seeded_and_the_vq_latent_is_the_quantised_map():
    torch.manual_seed(0)
    kl = create_tokenizer("kl-vae-f16d16-tiny").eval()
    images = _images(2)
    first = compute_latent_statistics(kl, iter([images]), sample=True, seed=3)
    second = compute_latent_statistics(kl, iter([images]), sample=True, seed=3)
    mean = compute_latent_statistics(kl, iter([images]))
    assert torch.equal(first.mean, second.mean)
    assert not torch.equal(first.mean, mean.mean)
    vq = create_tokenizer("ms-vq-vae-tiny").eval()
    vq_images = _images(2, size=64)
    with torch.no_grad():
        expected = vq.encode(vq_images).quantized
        assert torch.equal(vq.encode_latent(vq_images, sample=False), expected)
    stats = compute_latent_statistics(vq, iter([vq_images]), sample=True)
    direct = LatentStatistics(vq.latent_channels)
    direct.update(expected)
    assert torch.equal(stats.mean, direct.mean) and torch.equal(stats.m2, direct.m2)

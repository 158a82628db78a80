"""LatentSpace: the affine map and its inverse, the statistics it is built from, its file."""

import json

import pytest
import torch

from freqlat.generators import LatentSpace
from freqlat.tokenizers import LatentStatistics


def _stats(channels=4, groups=None):
    torch.manual_seed(0)
    stats = LatentStatistics(channels, groups)
    stats.update(
        torch.randn(16, channels, 3, 3) * torch.arange(1, channels + 1).view(1, -1, 1, 1) + 2
    )
    return stats


def test_channel_space_is_mean_std_normalisation_and_inverts_exactly():
    stats = _stats()
    space = LatentSpace.from_statistics("random:x", (4, 3, 3), stats, multiplier=0.5)
    z = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    mean, std = stats.channel_mean.view(1, -1, 1, 1), stats.channel_std.view(1, -1, 1, 1)
    torch.testing.assert_close(space.normalize(z), (z - mean) / std * 0.5)
    torch.testing.assert_close(space.denormalize(space.normalize(z)), z)


def test_global_space_scales_each_group_by_one_over_its_std():
    stats = _stats(groups={"high": (0, 1), "low": (1, 4)})
    space = LatentSpace.from_statistics("random:x", (4, 3, 3), stats, normalization="global")
    z = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    out = space.normalize(z)
    torch.testing.assert_close(out[:, :1], z[:, :1] * stats.group_scale("high"))
    torch.testing.assert_close(out[:, 1:], z[:, 1:] * stats.group_scale("low"))


def test_file_round_trip_and_clear_errors(tmp_path):
    space = LatentSpace.from_statistics("runs/va", (4, 3, 3), _stats(), source="10 latents")
    space.save(tmp_path)
    assert LatentSpace.load(tmp_path) == space
    (tmp_path / "latent_space.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"latent_space.json is not valid JSON"):
        LatentSpace.load(tmp_path)
    data = space.to_dict()
    data.pop("std")
    (tmp_path / "latent_space.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"missing fields \['std'\]"):
        LatentSpace.load(tmp_path)
    with pytest.raises(ValueError, match="std must be finite and positive"):
        LatentSpace("t", (1, 2, 2), (0.0,), (0.0,))
    with pytest.raises(ValueError, match=r"expected latents N x 4"):
        space.normalize(torch.zeros(1, 3, 3, 3))

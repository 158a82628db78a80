"""Dataset statistics of a tokenizer's latents, for normalising them before a generator.

Two conventions are served by one accumulator:

- channel-wise mean/std (LightningDiT normalises each latent channel);
- one global scale 1/std over a group of channels (MAR, and FA-VAE per branch).

Per-channel running (count, mean, M2) are merged batch by batch with Chan's parallel form of
Welford's algorithm in float64; a group's global moments follow exactly from its channels'
moments because every channel sees the same number of values. :func:`compute_latent_statistics`
runs a tokenizer over image batches and accumulates the latents a generator would see
(``encode_latent``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from freqlat.tokenizers.base import Tokenizer


class LatentStatistics:
    """Running per-channel moments of N x C x h x w latents.

    ``groups`` names channel ranges ``{name: (start, stop)}`` that get a global mean/std/scale
    (default: one group "all" over every channel).
    """

    def __init__(self, channels: int, groups: dict[str, tuple[int, int]] | None = None) -> None:
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = channels
        self.groups = dict(groups) if groups is not None else {"all": (0, channels)}
        for name, (start, stop) in self.groups.items():
            if not 0 <= start < stop <= channels:
                raise ValueError(f"group {name!r} range {(start, stop)} not within 0..{channels}")
        self.count = 0
        self.mean = torch.zeros(channels, dtype=torch.float64)
        self.m2 = torch.zeros(channels, dtype=torch.float64)

    def update(self, latent: Tensor) -> None:
        """Add a batch of latents (N x C x h x w)."""
        if latent.dim() != 4 or latent.shape[1] != self.channels:
            raise ValueError(
                f"expected N x {self.channels} x h x w latents, got {tuple(latent.shape)}"
            )
        values = latent.detach().to(device="cpu", dtype=torch.float64)
        values = values.transpose(0, 1).reshape(self.channels, -1)
        batch_count = values.shape[1]
        batch_mean = values.mean(dim=1)
        batch_m2 = (values - batch_mean[:, None]).pow(2).sum(dim=1)
        self._merge_moments(batch_count, batch_mean, batch_m2)

    def merge(self, other: LatentStatistics) -> None:
        """Fold another accumulator (e.g. from another rank) into this one."""
        if other.channels != self.channels:
            raise ValueError(f"cannot merge {other.channels}-channel stats into {self.channels}")
        self._merge_moments(other.count, other.mean, other.m2)

    def _merge_moments(self, count: int, mean: Tensor, m2: Tensor) -> None:
        if count == 0:
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta.pow(2) * (self.count * count / total)
        self.count = total

    def _require_data(self) -> None:
        if self.count < 2:
            raise ValueError("latent statistics need at least two values per channel")

    @property
    def channel_mean(self) -> Tensor:
        """Per-channel mean (float32, shape C)."""
        self._require_data()
        return self.mean.float()

    @property
    def channel_std(self) -> Tensor:
        """Per-channel population standard deviation (float32, shape C)."""
        self._require_data()
        return (self.m2 / self.count).sqrt().float()

    def group_moments(self, name: str) -> tuple[float, float]:
        """Global (mean, std) over every value of the channels in group ``name``."""
        self._require_data()
        if name not in self.groups:
            raise ValueError(f"unknown group {name!r}; groups: {sorted(self.groups)}")
        start, stop = self.groups[name]
        means = self.mean[start:stop]
        group_mean = means.mean()
        m2 = self.m2[start:stop].sum() + self.count * (means - group_mean).pow(2).sum()
        std = (m2 / (self.count * (stop - start))).sqrt()
        return float(group_mean), float(std)

    def group_scale(self, name: str) -> float:
        """MAR-style scale factor 1 / std of group ``name``."""
        return 1.0 / self.group_moments(name)[1]

    def normalize(self, latent: Tensor, mode: str = "channel") -> Tensor:
        """Normalise: ``"channel"`` gives (z - mean_c) / std_c, ``"global"`` z * scale per group."""
        mean, scale = self._affine(mode, latent)
        return (latent - mean) * scale

    def denormalize(self, latent: Tensor, mode: str = "channel") -> Tensor:
        """Inverse of :meth:`normalize`."""
        mean, scale = self._affine(mode, latent)
        return latent / scale + mean

    def _affine(self, mode: str, latent: Tensor) -> tuple[Tensor, Tensor]:
        if mode == "channel":
            mean, scale = self.channel_mean, 1.0 / self.channel_std
        elif mode == "global":
            mean = torch.zeros(self.channels)
            scale = torch.empty(self.channels)
            for name, (start, stop) in self.groups.items():
                scale[start:stop] = self.group_scale(name)
        else:
            raise ValueError(f"mode must be 'channel' or 'global', got {mode!r}")
        shape = (1, self.channels, 1, 1)
        kwargs = {"device": latent.device, "dtype": latent.dtype}
        return mean.view(shape).to(**kwargs), scale.view(shape).to(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state, with the derived statistics for human readers."""
        state: dict[str, Any] = {
            "channels": self.channels,
            "groups": {k: list(v) for k, v in self.groups.items()},
            "count": self.count,
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
        }
        if self.count >= 2:
            state["channel_std"] = self.channel_std.tolist()
            state["group_scale"] = {name: self.group_scale(name) for name in self.groups}
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LatentStatistics:
        """Rebuild an accumulator written by :meth:`to_dict`."""
        groups = {k: (int(v[0]), int(v[1])) for k, v in state["groups"].items()}
        stats = cls(int(state["channels"]), groups)
        stats.count = int(state["count"])
        stats.mean = torch.tensor(state["mean"], dtype=torch.float64)
        stats.m2 = torch.tensor(state["m2"], dtype=torch.float64)
        return stats


@torch.no_grad()
def compute_latent_statistics(
    model: Tokenizer,
    batches: Iterable[Tensor],
    *,
    sample: bool = False,
    flip: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> LatentStatistics:
    """Accumulate ``model``'s latent statistics over image batches (N x 3 x H x W in [-1, 1]).

    The latents are ``model.encode_latent``'s: the posterior mode, or with ``sample`` posterior
    samples drawn from one generator seeded with ``seed`` on ``device`` (VQ models: the
    quantised latent either way). ``flip`` adds each image's left-right mirror, as
    LightningDiT's latent cache does.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    stats = model.new_latent_statistics()
    generator = torch.Generator(device).manual_seed(seed) if sample else None
    for images in batches:
        images = images.to(device)
        if flip:
            images = torch.cat([images, images.flip(-1)])
        stats.update(model.encode_latent(images, sample=sample, generator=generator))
    return stats

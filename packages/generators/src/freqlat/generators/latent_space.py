"""The latent space a generator is trained in: which tokenizer made it, and how it is normalised.

A generator never sees raw tokenizer latents: LightningDiT trains on ``(z - mean) / std *
multiplier`` with channel-wise statistics of 10,000 training latents (hustvl/LightningDiT
``datasets/img_latent_dataset.py``, ``train.py``), MAR and the FA-VAE author scale each group of
channels by one global 1 / std. :class:`LatentSpace` records the tokenizer spec and the affine map
together, and travels with the latent cache and with every generator run, so that a sample is
decoded by the tokenizer it was trained for, with the statistics it was trained with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from freqlat.tokenizers.latent_stats import LatentStatistics

LATENT_SPACE_NAME = "latent_space.json"
NORMALIZATIONS = ("channel", "global", "none")


@dataclass(frozen=True)
class LatentSpace:
    """A tokenizer's latents and their normalisation ``(z - mean) / std * multiplier``.

    ``tokenizer`` is a :func:`freqlat.tokenizers.load_tokenizer` spec; ``latent_shape`` the
    (C, h, w) of one latent; ``mean`` and ``std`` have one entry per channel. ``normalization``
    says where they come from: ``"channel"`` (per-channel mean and std, LightningDiT),
    ``"global"`` (mean 0, one std per channel group: MAR, FA-VAE's [high, low] groups) or
    ``"none"`` (mean 0, std 1: token models). ``source`` is a note on the data they were
    measured on.
    """

    tokenizer: str
    latent_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    multiplier: float = 1.0
    normalization: str = "channel"
    source: str = ""

    def __post_init__(self) -> None:
        channels = self.latent_shape[0]
        if len(self.latent_shape) != 3 or min(self.latent_shape) < 1:
            raise ValueError(f"latent_shape must be (C, h, w), got {self.latent_shape}")
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(
                f"mean and std need {channels} entries (latent_shape {self.latent_shape}), "
                f"got {len(self.mean)} and {len(self.std)}"
            )
        if not all(math.isfinite(m) for m in self.mean):
            raise ValueError("mean must be finite")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError("std must be finite and positive")
        if not (math.isfinite(self.multiplier) and self.multiplier > 0):
            raise ValueError(f"multiplier must be finite and positive, got {self.multiplier}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}"
            )

    @classmethod
    def from_statistics(
        cls,
        tokenizer: str,
        latent_shape: Sequence[int],
        stats: LatentStatistics,
        normalization: str = "channel",
        multiplier: float = 1.0,
        source: str = "",
    ) -> LatentSpace:
        """The space of ``stats``: channel mean/std, or per-group scales for ``"global"``."""
        if normalization == "channel":
            mean, std = stats.channel_mean, stats.channel_std
        elif normalization == "global":
            mean = torch.zeros(stats.channels, dtype=torch.float64)
            std = torch.empty(stats.channels, dtype=torch.float64)
            for name, (start, stop) in stats.groups.items():
                std[start:stop] = 1.0 / stats.group_scale(name)
        elif normalization == "none":
            mean = torch.zeros(stats.channels, dtype=torch.float64)
            std = torch.ones(stats.channels, dtype=torch.float64)
        else:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        return cls(
            tokenizer=tokenizer,
            latent_shape=tuple(int(s) for s in latent_shape),
            mean=tuple(float(m) for m in mean),
            std=tuple(float(s) for s in std),
            multiplier=float(multiplier),
            normalization=normalization,
            source=source,
        )

    def _affine(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if z.dim() != 4 or z.shape[1] != self.latent_shape[0]:
            raise ValueError(
                f"expected latents N x {self.latent_shape[0]} x h x w, got {tuple(z.shape)}"
            )
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.mean, dtype=torch.float64).view(shape)
        std = torch.tensor(self.std, dtype=torch.float64).view(shape)
        return mean.to(z.device, z.dtype), std.to(z.device, z.dtype)

    def normalize(self, z: Tensor) -> Tensor:
        """Tokenizer latents -> the generator's space: ``(z - mean) / std * multiplier``."""
        mean, std = self._affine(z)
        return (z - mean) / std * self.multiplier

    def denormalize(self, x: Tensor) -> Tensor:
        """The generator's space -> tokenizer latents (the inverse of :meth:`normalize`)."""
        mean, std = self._affine(x)
        return x / self.multiplier * std + mean

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "latent space") -> LatentSpace:
        """Rebuild from :meth:`to_dict`; a missing or unknown field is a ValueError naming it."""
        names = set(cls.__dataclass_fields__)
        required = {"tokenizer", "latent_shape", "mean", "std"}
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        missing, unknown = sorted(required - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise ValueError(f"{source}: missing fields {missing}, unknown fields {unknown}")
        values = dict(data)
        for key in ("latent_shape", "mean", "std"):
            values[key] = tuple(values[key])
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from exc

    def save(self, directory: str | Path) -> Path:
        """Write ``latent_space.json`` into ``directory`` (atomically); returns its path."""
        path = Path(directory) / LATENT_SPACE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{LATENT_SPACE_NAME}.tmp")
        temp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        temp.replace(path)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> LatentSpace:
        """Read ``latent_space.json`` from ``directory``; errors name the file and the problem."""
        path = Path(directory) / LATENT_SPACE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no {LATENT_SPACE_NAME} in {directory}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, source=str(path))

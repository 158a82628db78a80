"""The common tokenizer base: static shape facts, input checks, save/load and latent statistics."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from freqlat.tokenizers.configs import config_from_dict
from freqlat.tokenizers.latent_stats import LatentStatistics
from freqlat.tokenizers.pretrained import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_pretrained_weights,
    load_state_strict,
    read_pretrained_meta,
    write_pretrained,
)
from freqlat.tokenizers.types import DiagonalGaussian

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "ConvTokenizer", "Tokenizer", "load_state_strict"]

LATENT_STATS_NAME = "latent_stats.json"

_ARCHITECTURES: dict[str, type[Tokenizer]] = {}


class Tokenizer(nn.Module, ABC):
    """Base class of every image tokenizer. Images are N x 3 x H x W in [-1, 1].

    Subclasses set ``architecture`` (the name stored in config.json) and ``config_class``, and
    implement the abstract members below plus ``forward``.
    """

    architecture: ClassVar[str] = ""
    config_class: ClassVar[type] = object

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.architecture:
            _ARCHITECTURES[cls.architecture] = cls

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.preset: str | None = None
        self.latent_stats: LatentStatistics | None = None

    # ---- static facts -------------------------------------------------------------------------
    @property
    @abstractmethod
    def downsample(self) -> int:
        """Spatial factor between image and latent."""

    @property
    @abstractmethod
    def latent_channels(self) -> int:
        """Channels of the latent that ``decode`` takes."""

    @property
    def image_channels(self) -> int:
        """Channels of the images the model takes (3)."""
        return 3

    def latent_shape(self, image_size: int | tuple[int, int]) -> tuple[int, int, int]:
        """(C, h, w) of the latent for a square ``image_size`` or an (H, W) pair."""
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        self._check_spatial(height, width)
        return (self.latent_channels, height // self.downsample, width // self.downsample)

    def _check_spatial(self, height: int, width: int) -> None:
        factor = self.downsample
        if height <= 0 or width <= 0 or height % factor or width % factor:
            raise ValueError(
                f"image size {height}x{width} is not a positive multiple of the model's "
                f"downsampling factor {factor}"
            )

    def check_images(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` is N x image_channels x H x W with H, W divisible."""
        if x.dim() != 4 or x.shape[1] != self.image_channels:
            raise ValueError(
                f"expected images of shape N x {self.image_channels} x H x W, got {tuple(x.shape)}"
            )
        self._check_spatial(x.shape[2], x.shape[3])

    def check_latent(self, z: Tensor) -> None:
        """Raise ValueError unless ``z`` is N x latent_channels x h x w."""
        if z.dim() != 4 or z.shape[1] != self.latent_channels:
            raise ValueError(
                f"expected latents of shape N x {self.latent_channels} x h x w, "
                f"got {tuple(z.shape)}"
            )

    # ---- adaptive-weight anchors --------------------------------------------------------------
    @property
    @abstractmethod
    def encoder_last_weight(self) -> Tensor:
        """The encoder's last conv weight (VF-loss adaptive weight)."""

    @property
    @abstractmethod
    def decoder_last_weight(self) -> Tensor:
        """The decoder's last conv weight (GAN adaptive weight)."""

    @abstractmethod
    def encode(self, x: Tensor) -> Any:
        """Latent of images ``x``: a posterior (KL models) or a quantiser output (VQ)."""

    @abstractmethod
    def decode(self, z: Tensor) -> Tensor:
        """Images from latents ``z``."""

    # ---- the latent a generator sees ----------------------------------------------------------
    def encode_latent(
        self,
        x: Tensor,
        *,
        sample: bool,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
    ) -> Tensor:
        """The N x latent_channels x h x w latent of images ``x`` that ``decode`` takes.

        KL models (FA-VAE included, over its joint ``[high, low]`` latent): a posterior sample
        with ``sample=True`` (drawn from ``generator``: one for the batch, or one per image, see
        :meth:`DiagonalGaussian.sample`), else the posterior mode. This default serves every
        tokenizer whose ``encode`` returns a :class:`DiagonalGaussian`; a VQ model overrides it
        with its quantised latent.
        """
        posterior = self.encode(x)
        if not isinstance(posterior, DiagonalGaussian):
            raise TypeError(
                f"{type(self).__name__}.encode gives {type(posterior).__name__}, not a "
                "DiagonalGaussian: the model must define encode_latent itself"
            )
        return posterior.sample(generator) if sample else posterior.mode()

    # ---- latent statistics --------------------------------------------------------------------
    def latent_groups(self) -> dict[str, tuple[int, int]]:
        """Channel groups that get their own global scale (one group "all" by default)."""
        return {"all": (0, self.latent_channels)}

    def new_latent_statistics(self) -> LatentStatistics:
        """An empty accumulator matching this model's latent channels and groups."""
        return LatentStatistics(self.latent_channels, self.latent_groups())

    # ---- save / load --------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write model.safetensors, config.json and latent_stats.json (if set) to ``directory``."""
        path = write_pretrained(self, directory, self.architecture, self.preset, self.config)
        stats_path = path / LATENT_STATS_NAME
        if self.latent_stats is not None:
            stats_path.write_text(json.dumps(self.latent_stats.to_dict(), indent=2) + "\n")
        elif stats_path.exists():
            stats_path.unlink()
        return path

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> Tokenizer:
        """Load a directory written by :meth:`save_pretrained`, checking every key strictly.

        Called on a subclass, a checkpoint of another architecture raises ValueError.
        """
        path = Path(directory)
        config_path = path / CONFIG_NAME
        meta = read_pretrained_meta(path)
        architecture = meta.get("architecture")
        if architecture not in _ARCHITECTURES:
            raise ValueError(
                f"{config_path} names architecture {architecture!r}; known: "
                f"{sorted(_ARCHITECTURES)}"
            )
        model_cls = _ARCHITECTURES[architecture]
        if cls is not Tokenizer and not issubclass(model_cls, cls):
            raise ValueError(
                f"{path} holds a {architecture!r} checkpoint, not a {cls.architecture!r} one"
            )
        config = config_from_dict(model_cls.config_class, meta["config"])
        model = model_cls(config)
        model.preset = meta.get("preset")
        load_pretrained_weights(model, path, map_location)
        stats_path = path / LATENT_STATS_NAME
        if stats_path.is_file():
            model.latent_stats = LatentStatistics.from_dict(json.loads(stats_path.read_text()))
        return model


class ConvTokenizer(Tokenizer):
    """A tokenizer on one LDM encoder/decoder pair, configured by ``config.backbone``.

    Subclasses build ``self.encoder`` and ``self.decoder``; the static facts and the
    adaptive-weight anchors follow from them here.
    """

    @property
    def downsample(self) -> int:
        """Spatial factor between input and latent."""
        return self.config.backbone.downsample

    @property
    def latent_channels(self) -> int:
        """Latent channels (the backbone's z_channels)."""
        return self.config.backbone.z_channels

    @property
    def image_channels(self) -> int:
        """Input/output channels (3 for images, 9 for FA-VAE's high branch)."""
        return self.config.backbone.in_channels

    @property
    def encoder_last_weight(self) -> Tensor:
        """``encoder.conv_out.weight``."""
        return self.encoder.conv_out.weight

    @property
    def decoder_last_weight(self) -> Tensor:
        """``decoder.conv_out.weight``."""
        return self.decoder.conv_out.weight

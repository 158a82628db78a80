"""The two-level Haar front end of the FA-VAE author's wavelet tokenizers.

An image x (N x C x H x W) is split by a two-level Haar DWT (pytorch_wavelets convention, mode
"zero") into LL2 (C x H/4), the level-2 details (3C x H/4) and the level-1 details (3C x H/2),
each detail tensor colour-major (R-LH, R-HL, R-HH, G-LH, ...). Each part is normalised
(level 1 / 2, level 2 / 4, LL2 / 4, as the author does). The level-1 details are brought to
H/4 by a learned stride-2 conv (3C -> ``level1_channels``), and the autoencoder sees
[level-1 embedding, level-2 details, LL2] = 36 + 9 + 3 = 48 channels at a quarter of the image
size. On the way out the first ``level1_channels`` channels go back to 3C x H/2 through a
learned stride-2 transposed conv, every part is de-normalised and the inverse DWT recomposes the
image.

Two layouts of the learned convs, one per experiment of the author:
- ``"var"`` (HY-Wong/VAR ``models/vqvae_wav.py``, ``DownsampleWav``/``UpsampleWav``): zero-pad
  right and bottom by 1, 3x3 conv stride 2 (3C -> 36); back: 3x3 transposed conv stride 2
  (36 -> 3C), dropping the last row and column.
- ``"ldm"`` (HY-Wong/latent-diffusion ``ldm/models/autoencoder_wav.py``): 3x3 conv stride 2
  padding 1 (3C -> 3C), then a 1x1 conv (3C -> 36); back: 4x4 transposed conv stride 2
  padding 1 (36 -> 36), then a 1x1 conv (36 -> 3C). Its stride-2 conv keeps 3C values per
  position, so the encoder sees a quarter of the level-1 coefficients' degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from freqlat.wavelets import bands_to_channels, channels_to_bands, dwt2, idwt2

LAYOUTS = ("var", "ldm")


@dataclass(frozen=True)
class HaarFrontEndConfig:
    """The front end's layout (``"var"`` or ``"ldm"``, see the module), widths and band scales."""

    layout: str = "var"
    image_channels: int = 3
    level1_channels: int = 36
    level1_scale: float = 2.0
    level2_scale: float = 4.0
    low_scale: float = 4.0

    @property
    def coefficient_channels(self) -> int:
        """Channels the autoencoder sees: level-1 embedding + level-2 details + LL2 (48)."""
        return self.level1_channels + 4 * self.image_channels

    def validate(self) -> None:
        """Raise ValueError for an unknown layout, non-positive widths or scales."""
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown front-end layout {self.layout!r}; choose one of {LAYOUTS}")
        if self.image_channels < 1 or self.level1_channels < 1:
            raise ValueError("image_channels and level1_channels must be >= 1")
        if min(self.level1_scale, self.level2_scale, self.low_scale) <= 0:
            raise ValueError("the band scales must be positive")


@dataclass
class HaarBands:
    """Normalised two-level Haar coefficients of a batch.

    ``level1``: N x 3C x H/2 x W/2 level-1 details / level1_scale; ``level2``: N x 3C x H/4 x
    W/4 level-2 details / level2_scale; ``low``: N x C x H/4 x W/4 LL2 / low_scale.
    """

    level1: Tensor
    level2: Tensor
    low: Tensor


class HaarFrontEnd(nn.Module):
    """Image <-> 48-channel coefficient tensor at a quarter of the size (see the module).

    ``encode``/``decode`` are the whole path; ``split``/``merge`` the fixed wavelet part,
    ``embed_level1``/``unembed_level1`` the learned convs and ``pack``/``unpack`` the channel
    layout, for losses that compare the parts.
    """

    downsample = 4

    def __init__(self, config: HaarFrontEndConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        details, width = 3 * config.image_channels, config.level1_channels
        if config.layout == "var":
            self.down = nn.Conv2d(details, width, kernel_size=3, stride=2)
            self.up = nn.ConvTranspose2d(width, details, kernel_size=3, stride=2)
        else:
            self.down = nn.Conv2d(details, details, kernel_size=3, stride=2, padding=1)
            self.down_mix = nn.Conv2d(details, width, kernel_size=1)
            self.up = nn.ConvTranspose2d(width, width, kernel_size=4, stride=2, padding=1)
            self.up_mix = nn.Conv2d(width, details, kernel_size=1)

    def _check_image(self, x: Tensor) -> None:
        channels = self.config.image_channels
        if x.dim() != 4 or x.shape[1] != channels or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(
                f"expected images N x {channels} x H x W with H and W divisible by 4, "
                f"got {tuple(x.shape)}"
            )

    def split(self, x: Tensor) -> HaarBands:
        """The normalised coefficients of images ``x`` (H and W divisible by 4)."""
        self._check_image(x)
        low, (level1, level2) = dwt2(x, "haar", levels=2, mode="zero")
        c = self.config
        return HaarBands(
            level1=bands_to_channels(level1) / c.level1_scale,
            level2=bands_to_channels(level2) / c.level2_scale,
            low=low / c.low_scale,
        )

    def merge(self, bands: HaarBands) -> Tensor:
        """The image of normalised coefficients: de-normalise, then the inverse DWT."""
        c = self.config
        level1 = channels_to_bands(bands.level1 * c.level1_scale)
        level2 = channels_to_bands(bands.level2 * c.level2_scale)
        return idwt2(bands.low * c.low_scale, [level1, level2], "haar", mode="zero")

    def embed_level1(self, level1: Tensor) -> Tensor:
        """Level-1 details (N x 3C x h x w) -> N x level1_channels x h/2 x w/2."""
        if self.config.layout == "var":
            return self.down(F.pad(level1, (0, 1, 0, 1)))
        return self.down_mix(self.down(level1))

    def unembed_level1(self, embedding: Tensor) -> Tensor:
        """N x level1_channels x h x w -> level-1 details N x 3C x 2h x 2w."""
        if self.config.layout == "var":
            return self.up(embedding)[..., :-1, :-1]
        return self.up_mix(self.up(embedding))

    def pack(self, bands: HaarBands) -> Tensor:
        """The autoencoder's input: [level-1 embedding, level-2 details, LL2] on channels."""
        return torch.cat([self.embed_level1(bands.level1), bands.level2, bands.low], dim=1)

    def unpack(self, coefficients: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(level-1 embedding, level-2 details, LL2) of a coefficient tensor (no conv applied)."""
        c = self.config
        expected = c.coefficient_channels
        if coefficients.dim() != 4 or coefficients.shape[1] != expected:
            raise ValueError(
                f"expected coefficients N x {expected} x h x w, got {tuple(coefficients.shape)}"
            )
        return tuple(
            coefficients.split([c.level1_channels, 3 * c.image_channels, c.image_channels], dim=1)
        )

    def encode(self, x: Tensor) -> Tensor:
        """Images N x C x H x W -> coefficients N x 48 x H/4 x W/4."""
        return self.pack(self.split(x))

    def decode(self, coefficients: Tensor) -> Tensor:
        """Coefficients N x 48 x h x w -> images N x C x 4h x 4w."""
        embedding, level2, low = self.unpack(coefficients)
        return self.merge(HaarBands(self.unembed_level1(embedding), level2, low))

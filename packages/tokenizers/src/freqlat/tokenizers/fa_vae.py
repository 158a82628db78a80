"""FA-VAE: two KL autoencoders on a one-level Haar split, as one model.

Image x (N x 3 x H x W) -> Haar DWT -> LL (N x 3 x H/2 x W/2) and detail bands LH, HL, HH.
- low branch: LL / band_scale, bicubically upsampled to H x W, through a 3-channel KL AE;
  its output is bicubically downsampled to H/2 x W/2 and multiplied by band_scale.
- high branch: bands / band_scale as 9 colour-major channels (R-LH, R-HL, R-HH, G-LH, ...) at
  H/2 x W/2 through a 9-channel KL AE; its output is multiplied by band_scale.
The image is recomposed with the inverse Haar DWT. The joint latent is [high, low] on channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from freqlat.tokenizers.base import Tokenizer
from freqlat.tokenizers.configs import FrequencyAwareConfig
from freqlat.tokenizers.kl import AutoencoderKL
from freqlat.tokenizers.types import BranchOutput, DiagonalGaussian, TokenizerOutput
from freqlat.wavelets import bands_to_channels, channels_to_bands, haar_dwt2, haar_idwt2


class FrequencyAwareVAE(Tokenizer):
    """FA-VAE with its two KL branches as submodules ``low`` and ``high``.

    ``encode`` returns a :class:`DiagonalGaussian` over the joint [high, low] latent;
    ``forward`` returns a :class:`TokenizerOutput` with ``posterior=None`` and
    ``branches={"low": ..., "high": ...}``, each in its branch's own (scaled) space.
    """

    architecture = "frequency-aware-vae"
    config_class = FrequencyAwareConfig

    def __init__(self, config: FrequencyAwareConfig) -> None:
        super().__init__(config)
        if config.low.backbone.in_channels != 3:
            raise ValueError("the low branch takes the 3-channel LL band")
        if config.high.backbone.in_channels != 9:
            raise ValueError("the high branch takes the 9 detail-band channels (3 colours x 3)")
        if config.low.backbone.downsample != 2 * config.high.backbone.downsample:
            raise ValueError(
                "the low branch (full size) must downsample twice as much as the high branch "
                f"(half size) for the latents to align; got {config.low.backbone.downsample} "
                f"and {config.high.backbone.downsample}"
            )
        if config.band_scale <= 0:
            raise ValueError(f"band_scale must be positive, got {config.band_scale}")
        self.low = AutoencoderKL(config.low)
        self.high = AutoencoderKL(config.high)

    @property
    def band_scale(self) -> float:
        """Both bands are divided by this before their branch and multiplied back after."""
        return self.config.band_scale

    @property
    def downsample(self) -> int:
        """Spatial factor between image and joint latent."""
        return self.low.downsample

    @property
    def high_channels(self) -> int:
        """Channels of the high branch's latent (the first part of the joint latent)."""
        return self.high.latent_channels

    @property
    def low_channels(self) -> int:
        """Channels of the low branch's latent (the second part of the joint latent)."""
        return self.low.latent_channels

    @property
    def latent_channels(self) -> int:
        """Channels of the joint latent, high + low."""
        return self.high_channels + self.low_channels

    def latent_groups(self) -> dict[str, tuple[int, int]]:
        """One global scale per branch: "high" first, then "low"."""
        return {"high": (0, self.high_channels), "low": (self.high_channels, self.latent_channels)}

    @property
    def encoder_last_weight(self) -> Tensor:
        """The low branch's ``encoder.conv_out.weight`` (the one VF alignment acts on)."""
        return self.low.encoder_last_weight

    @property
    def decoder_last_weight(self) -> Tensor:
        """The low branch's ``decoder.conv_out.weight``; each branch also has its own."""
        return self.low.decoder_last_weight

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Branch inputs of images x: (LL/scale upsampled to H x W, bands/scale as 9 channels)."""
        self.check_images(x)
        low, high = haar_dwt2(x)
        low_input = F.interpolate(
            low / self.band_scale, size=x.shape[-2:], mode="bicubic", align_corners=False
        )
        return low_input, bands_to_channels(high) / self.band_scale

    def merge(self, low_output: Tensor, high_output: Tensor) -> Tensor:
        """Image from branch outputs: inverse of :meth:`split` up to the bicubic round trip."""
        half = high_output.shape[-2:]
        low = F.interpolate(low_output, size=half, mode="bicubic", align_corners=False)
        return self.compose(low * self.band_scale, channels_to_bands(high_output) * self.band_scale)

    @staticmethod
    def compose(low: Tensor, high: Tensor) -> Tensor:
        """Inverse one-level Haar DWT of LL (N x 3 x h x w) and bands (N x 3 x 3 x h x w)."""
        return haar_idwt2(low, high)

    def split_latent(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(high, low) parts of a joint latent."""
        self.check_latent(z)
        return z[:, : self.high_channels], z[:, self.high_channels :]

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """Joint posterior over [high, low] latents (N x latent_channels x H/f x W/f)."""
        low_input, high_input = self.split(x)
        low, high = self.low.encode(low_input), self.high.encode(high_input)
        return DiagonalGaussian(
            torch.cat([high.mean, low.mean], dim=1), torch.cat([high.logvar, low.logvar], dim=1)
        )

    def decode(self, z: Tensor) -> Tensor:
        """Image N x 3 x H x W from a joint latent."""
        high, low = self.split_latent(z)
        return self.merge(self.low.decode(low), self.high.decode(high))

    def forward(
        self, x: Tensor, sample: bool = True, generator: torch.Generator | None = None
    ) -> TokenizerOutput:
        """Reconstruct ``x`` through both branches; ``branches`` holds each one's terms."""
        low_input, high_input = self.split(x)
        low: BranchOutput = self.low.reconstruct(low_input, sample=sample, generator=generator)
        high: BranchOutput = self.high.reconstruct(high_input, sample=sample, generator=generator)
        return TokenizerOutput(
            recon=self.merge(low.recon, high.recon),
            latent=torch.cat([high.latent, low.latent], dim=1),
            branches={"low": low, "high": high},
        )

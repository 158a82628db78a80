"""KL autoencoder (LDM AutoencoderKL): MAR's KL-16, VA-VAE, and each FA-VAE branch."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from freqlat.tokenizers.backbone import Decoder, Encoder
from freqlat.tokenizers.base import ConvTokenizer
from freqlat.tokenizers.configs import KLAutoencoderConfig
from freqlat.tokenizers.types import BranchOutput, DiagonalGaussian, TokenizerOutput


class AutoencoderKL(ConvTokenizer):
    """Convolutional VAE with a diagonal Gaussian posterior over an N x z x H/f x W/f latent.

    ``encode`` returns the posterior; ``decode`` maps a latent back to N x in_channels x H x W.
    """

    architecture = "kl-autoencoder"
    config_class = KLAutoencoderConfig

    def __init__(self, config: KLAutoencoderConfig) -> None:
        super().__init__(config)
        backbone = config.backbone
        z = backbone.z_channels
        self.encoder = Encoder(backbone, out_channels=2 * z)
        self.quant_conv = nn.Conv2d(2 * z, 2 * z, kernel_size=1)
        self.post_quant_conv = nn.Conv2d(z, z, kernel_size=1)
        self.decoder = Decoder(backbone, out_channels=backbone.in_channels)

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """Posterior q(z | x) for inputs N x image_channels x H x W."""
        self.check_images(x)
        return DiagonalGaussian.from_moments(self.quant_conv(self.encoder(x)))

    def decode(self, z: Tensor) -> Tensor:
        """Reconstruction N x image_channels x H x W from a latent N x z x h x w."""
        self.check_latent(z)
        return self.decoder(self.post_quant_conv(z))

    def reconstruct(
        self, x: Tensor, sample: bool = True, generator: torch.Generator | None = None
    ) -> BranchOutput:
        """Encode, sample (or take the mode) and decode ``x``, keeping every intermediate."""
        posterior = self.encode(x)
        latent = posterior.sample(generator) if sample else posterior.mode()
        return BranchOutput(input=x, recon=self.decode(latent), posterior=posterior, latent=latent)

    def forward(
        self, x: Tensor, sample: bool = True, generator: torch.Generator | None = None
    ) -> TokenizerOutput:
        """Reconstruct ``x``; the output carries the posterior for the KL term."""
        branch = self.reconstruct(x, sample=sample, generator=generator)
        return TokenizerOutput(recon=branch.recon, latent=branch.latent, posterior=branch.posterior)

"""VAR's multi-scale VQ-VAE (MS-VQ-VAE)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from freqlat.tokenizers.backbone import Decoder, Encoder
from freqlat.tokenizers.base import ConvTokenizer
from freqlat.tokenizers.configs import MultiScaleVQConfig
from freqlat.tokenizers.quantizer import MultiScaleResidualQuantizer, QuantizerOutput
from freqlat.tokenizers.types import TokenizerOutput


class MultiScaleVQVAE(ConvTokenizer):
    """Conv encoder, 3x3 quant conv, multi-scale residual quantiser, 3x3 post-quant conv, decoder.

    ``encode`` returns a :class:`QuantizerOutput` (quantised latent, per-scale indices, VQ loss);
    ``decode`` takes a quantised latent; ``decode_indices`` takes the per-scale token maps.
    The quantiser fixes the latent side to the last patch size, so images must be exactly
    ``patch_sizes[-1] * downsample`` pixels on each side.
    """

    architecture = "multiscale-vqvae"
    config_class = MultiScaleVQConfig

    def __init__(self, config: MultiScaleVQConfig) -> None:
        super().__init__(config)
        backbone = config.backbone
        z = backbone.z_channels
        pad = config.quant_conv_kernel // 2
        self.encoder = Encoder(backbone, out_channels=z)
        self.quant_conv = nn.Conv2d(z, z, config.quant_conv_kernel, padding=pad)
        self.quantize = MultiScaleResidualQuantizer(
            channels=z,
            vocab_size=config.vocab_size,
            patch_sizes=config.patch_sizes,
            beta=config.beta,
            phi_count=config.phi_count,
            phi_ratio=config.phi_ratio,
        )
        self.post_quant_conv = nn.Conv2d(z, z, config.quant_conv_kernel, padding=pad)
        self.decoder = Decoder(backbone, out_channels=backbone.in_channels)

    @property
    def image_size(self) -> int:
        """The one image side this model takes: last patch size times the downsampling."""
        return self.config.patch_sizes[-1] * self.downsample

    def _check_spatial(self, height: int, width: int) -> None:
        if height != self.image_size or width != self.image_size:
            raise ValueError(
                f"this multi-scale VQ-VAE takes {self.image_size}x{self.image_size} images "
                f"(last patch size {self.config.patch_sizes[-1]} x downsample "
                f"{self.downsample}), got {height}x{width}"
            )

    def encode(self, x: Tensor) -> QuantizerOutput:
        """Quantise images N x 3 x H x W; the result holds latent, indices and VQ loss."""
        self.check_images(x)
        return self.quantize(self.quant_conv(self.encoder(x)))

    def encode_latent(
        self,
        x: Tensor,
        *,
        sample: bool,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
    ) -> Tensor:
        """The quantised latent of images ``x`` (N x C x h x w): quantisation is deterministic,
        so ``sample`` and ``generator`` change nothing."""
        return self.encode(x).quantized

    def encode_indices(self, x: Tensor) -> list[Tensor]:
        """The token indices of images ``x``, one N x pn x pn long tensor per scale (coarse
        first); :meth:`decode_indices` maps them back to images."""
        return self.encode(x).indices

    def decode(self, z: Tensor) -> Tensor:
        """Image N x 3 x H x W (unclamped) from a quantised latent N x C x h x w."""
        self.check_latent(z)
        return self.decoder(self.post_quant_conv(z))

    def decode_indices(self, indices: list[Tensor]) -> Tensor:
        """Image from the per-scale token maps (N x pn x pn or N x pn*pn each)."""
        return self.decode(self.quantize.indices_to_latent(indices))

    def forward(self, x: Tensor, sample: bool = True) -> TokenizerOutput:
        """Reconstruct ``x``; ``sample`` is accepted for interface symmetry and has no effect."""
        quantized = self.encode(x)
        return TokenizerOutput(
            recon=self.decode(quantized.quantized),
            latent=quantized.quantized,
            vq_loss=quantized.loss,
            indices=quantized.indices,
        )

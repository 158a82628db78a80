"""The wavelet KL-VAE of the FA-VAE author's LDM experiment ("KL-VAE-WAV f16c16").

HY-Wong/latent-diffusion ``ldm/models/autoencoder_wav.py`` with
``configs/autoencoder/autoencoder_kl-wav_16x16x16.yaml``: the two-level Haar front end
(:mod:`freqlat.tokenizers.haar_front_end`, its "ldm" layout) turns an image into 48 channels
at a quarter of its size, and an LDM KL autoencoder (ch 128, ch_mult (1, 2, 4), two blocks per
level, attention at the 16 px level, z 16) encodes those to a 16-channel latent at 1/16 of the
image size; the decoder's 48 channels go back through the front end to an image. The training
loss is LDM's LPIPS-with-discriminator loss on the recomposed image, as for any KL model here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from freqlat.tokenizers.backbone import ConvBackboneConfig
from freqlat.tokenizers.haar_front_end import HaarFrontEndConfig
from freqlat.tokenizers.kl import AutoencoderKL
from freqlat.tokenizers.types import DiagonalGaussian
from freqlat.tokenizers.wavelet_tokenizer import HaarFrontEndTokenizer


@dataclass(frozen=True)
class WaveletKLConfig:
    """A KL autoencoder (``backbone``, on the coefficients) behind a Haar ``front_end``.

    ``backbone.in_channels`` must equal the front end's coefficient channels (48);
    ``backbone.resolution`` is the coefficients' side (a quarter of the image's).
    """

    backbone: ConvBackboneConfig = field(
        default_factory=lambda: ConvBackboneConfig(
            in_channels=48,
            ch=128,
            ch_mult=(1, 2, 4),
            num_res_blocks=2,
            resolution=64,
            encoder_attn_resolutions=(16,),
            decoder_attn_resolutions=(16,),
            z_channels=16,
        )
    )
    front_end: HaarFrontEndConfig = field(default_factory=lambda: HaarFrontEndConfig(layout="ldm"))


class WaveletAutoencoderKL(HaarFrontEndTokenizer, AutoencoderKL):
    """KL autoencoder on two-level Haar coefficients: images N x 3 x H x W <-> N x z x H/16 x W/16.

    ``encode`` gives the posterior, ``decode`` the recomposed image; ``forward`` (inherited)
    returns recon, latent and posterior like every KL model. ``front_end`` is the
    :class:`HaarFrontEnd`; ``decoder_last_weight`` is the decoder's output conv (48 channels),
    upstream's ``get_last_layer``.
    """

    architecture = "wavelet-kl-autoencoder"
    config_class = WaveletKLConfig

    def __init__(self, config: WaveletKLConfig) -> None:
        self.check_backbone_width(config)
        super().__init__(config)
        self.attach_front_end()

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """Posterior q(z | x) for images N x 3 x H x W (H, W divisible by ``downsample``)."""
        self.check_images(x)
        coefficients = self.front_end.encode(x)
        return DiagonalGaussian.from_moments(self.quant_conv(self.encoder(coefficients)))

    def decode(self, z: Tensor) -> Tensor:
        """Image N x 3 x H x W recomposed from a latent N x z x H/16 x W/16 (not clamped)."""
        self.check_latent(z)
        return self.front_end.decode(self.decoder(self.post_quant_conv(z)))

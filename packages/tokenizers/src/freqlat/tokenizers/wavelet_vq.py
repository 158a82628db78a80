"""The wavelet MS-VQ-VAE of the FA-VAE author's VAR experiment (``ms-vq-vae-wav``).

HY-Wong/VAR ``models/vqvae_wav.py`` (``VQVAE_WAV``) as ``train_wav.py`` builds it and
``trainer_wav.py`` feeds it: the two-level Haar front end
(:mod:`freqlat.tokenizers.haar_front_end`, its "var" layout) turns an image into 48 channels at a
quarter of its size; VAR's VQ encoder (ch 160, ch_mult (1, 2, 4), two blocks per level,
attention in the last level's blocks and in the middle) brings them to a 256-channel latent at
1/16 of the image size, VAR's multi-scale residual quantiser (4096 codes, 4 shared phi convs,
phi ratio 0.5) quantises it, and VAR's decoder gives 48 channels back, which the front end
recomposes into an image. ``train_wav.py`` fixes ch 160 and V 4096; the latent width is the
fork's ``--Cvae`` default (256; VAR's own tokenizer has 32).

Every conv starts as the fork's ``build_vae`` initialises it (``models/__init__.py``
``init_weights`` with ``init_vae=-0.5``): Xavier-normal weights with gain 0.5 and zero biases;
the codebook is uniform in +-1/V (its ``init_vocab=-1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from freqlat.tokenizers.backbone import ConvBackboneConfig
from freqlat.tokenizers.configs import MultiScaleVQConfig
from freqlat.tokenizers.haar_front_end import HaarBands, HaarFrontEndConfig
from freqlat.tokenizers.quantizer import QuantizerOutput
from freqlat.tokenizers.types import TokenizerOutput
from freqlat.tokenizers.vq import MultiScaleVQVAE
from freqlat.tokenizers.wavelet_tokenizer import HaarFrontEndTokenizer


@dataclass(frozen=True)
class WaveletMultiScaleVQConfig(MultiScaleVQConfig):
    """A multi-scale VQ-VAE (``backbone`` on the coefficients) behind a Haar ``front_end``.

    ``backbone.in_channels`` must equal the front end's coefficient channels (48);
    ``backbone.resolution`` is the coefficients' side (a quarter of the image's). ``init_gain``
    is the Xavier-normal gain of every conv at construction (0 keeps PyTorch's default init).
    """

    backbone: ConvBackboneConfig = field(
        default_factory=lambda: ConvBackboneConfig(
            in_channels=48,
            ch=160,
            ch_mult=(1, 2, 4),
            num_res_blocks=2,
            resolution=64,
            encoder_attn_resolutions=(16,),
            decoder_attn_resolutions=(16,),
            z_channels=256,
        )
    )
    front_end: HaarFrontEndConfig = field(default_factory=lambda: HaarFrontEndConfig(layout="var"))
    init_gain: float = 0.5


@dataclass
class WaveletComponents:
    """The normalised wavelet components on both sides of the autoencoder, for the loss.

    ``target``: the input's bands (level 1 / 2, level 2 / 4, LL2 / 4); ``recon``: the decoded
    bands (level 1 after the transposed conv); ``embedding``: the encoder-side level-1 embedding
    (36 x H/4); ``recon_embedding``: the decoder's first 36 output channels.
    """

    target: HaarBands
    recon: HaarBands
    embedding: Tensor
    recon_embedding: Tensor


@dataclass
class WaveletVQOutput(TokenizerOutput):
    """A :class:`TokenizerOutput` that also carries the :class:`WaveletComponents`."""

    components: WaveletComponents | None = None


class WaveletMultiScaleVQVAE(HaarFrontEndTokenizer, MultiScaleVQVAE):
    """Multi-scale VQ-VAE on two-level Haar coefficients: images N x 3 x H x W <-> tokens.

    ``encode`` quantises (a :class:`QuantizerOutput`), ``decode`` and ``decode_indices`` give
    the recomposed image, ``encode_latent`` / ``encode_indices`` are the generator's contract
    (inherited). ``quantize`` is the :class:`MultiScaleResidualQuantizer` VAR builds its inputs
    with. ``decoder_last_weight`` is the decoder's 48-channel output conv (the fork's adaptive
    weight anchor, ``vae.decoder.conv_out.weight``). Images must be exactly
    ``patch_sizes[-1] * downsample`` pixels (256 for ``ms-vq-vae-wav``).
    """

    architecture = "wavelet-multiscale-vqvae"
    config_class = WaveletMultiScaleVQConfig

    def __init__(self, config: WaveletMultiScaleVQConfig) -> None:
        self.check_backbone_width(config)
        if config.init_gain < 0:
            raise ValueError(f"init_gain must be >= 0, got {config.init_gain}")
        super().__init__(config)
        self.attach_front_end()
        if config.init_gain > 0:
            self.apply(self._init_conv)

    def _init_conv(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.xavier_normal_(module.weight, gain=self.config.init_gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def _quantize_coefficients(self, coefficients: Tensor) -> QuantizerOutput:
        return self.quantize(self.quant_conv(self.encoder(coefficients)))

    def encode(self, x: Tensor) -> QuantizerOutput:
        """Quantise images N x 3 x H x W: the latent, per-scale indices and VQ loss."""
        self.check_images(x)
        return self._quantize_coefficients(self.front_end.encode(x))

    def decode(self, z: Tensor) -> Tensor:
        """Image N x 3 x H x W (unclamped) recomposed from a quantised latent N x C x h x w."""
        self.check_latent(z)
        return self.front_end.decode(self.decoder(self.post_quant_conv(z)))

    def forward(self, x: Tensor, sample: bool = True) -> WaveletVQOutput:
        """Reconstruct ``x`` keeping the wavelet components for the loss; ``sample`` has no effect."""
        self.check_images(x)
        front = self.front_end
        bands = front.split(x)
        coefficients = front.pack(bands)
        quantized = self._quantize_coefficients(coefficients)
        decoded = self.decoder(self.post_quant_conv(quantized.quantized))
        recon_embedding, recon_level2, recon_low = front.unpack(decoded)
        recon_bands = HaarBands(front.unembed_level1(recon_embedding), recon_level2, recon_low)
        components = WaveletComponents(
            target=bands,
            recon=recon_bands,
            embedding=front.unpack(coefficients)[0],
            recon_embedding=recon_embedding,
        )
        return WaveletVQOutput(
            recon=front.merge(recon_bands),
            latent=quantized.quantized,
            vq_loss=quantized.loss,
            indices=quantized.indices,
            components=components,
        )

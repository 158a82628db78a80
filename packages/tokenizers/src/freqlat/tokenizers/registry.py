"""Named presets: the paper configurations and their tiny CPU variants."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from freqlat.tokenizers.backbone import ConvBackboneConfig
from freqlat.tokenizers.base import Tokenizer
from freqlat.tokenizers.configs import (
    FrequencyAwareConfig,
    KLAutoencoderConfig,
    MultiScaleVQConfig,
    TokenizerConfig,
    apply_overrides,
)
from freqlat.tokenizers.fa_vae import FrequencyAwareVAE
from freqlat.tokenizers.kl import AutoencoderKL
from freqlat.tokenizers.vq import MultiScaleVQVAE
from freqlat.tokenizers.wavelet_kl import WaveletAutoencoderKL, WaveletKLConfig
from freqlat.tokenizers.wavelet_vq import WaveletMultiScaleVQConfig, WaveletMultiScaleVQVAE

# LDM f16 backbone at 256 px: 128 -> 512 channels, attention on the 16 x 16 level.
_F16 = ConvBackboneConfig(
    ch=128,
    ch_mult=(1, 1, 2, 2, 4),
    num_res_blocks=2,
    resolution=256,
    encoder_attn_resolutions=(16,),
    decoder_attn_resolutions=(16,),
)
# Tiny f16 backbone for CPU tests: five levels kept (so f = 16), narrow and one block each.
_F16_TINY = ConvBackboneConfig(
    ch=32,
    ch_mult=(1, 1, 2, 2, 2),
    num_res_blocks=1,
    resolution=64,
    encoder_attn_resolutions=(4,),
    decoder_attn_resolutions=(4,),
)
# FA-VAE's high branch: 9 channels at half size, f8 (128 -> 16 at 256 px), attention at 16.
_HIGH_F8 = ConvBackboneConfig(
    in_channels=9,
    ch=128,
    ch_mult=(1, 2, 2, 4),
    num_res_blocks=2,
    resolution=128,
    encoder_attn_resolutions=(16,),
    decoder_attn_resolutions=(16,),
)
_HIGH_F8_TINY = ConvBackboneConfig(
    in_channels=9,
    ch=32,
    ch_mult=(1, 2, 2, 2),
    num_res_blocks=1,
    resolution=32,
    encoder_attn_resolutions=(4,),
    decoder_attn_resolutions=(4,),
)


def _wavelet_tiny(backbone: ConvBackboneConfig) -> ConvBackboneConfig:
    """A wavelet model's backbone narrowed for CPU: 32 channels, one block per level, 4 px
    attention; three levels kept, so the model still downsamples by 16 (4 x 4)."""
    return replace(
        backbone,
        ch=32,
        ch_mult=(1, 2, 2),
        num_res_blocks=1,
        resolution=16,
        encoder_attn_resolutions=(4,),
        decoder_attn_resolutions=(4,),
    )


def _kl(
    backbone: ConvBackboneConfig, z: int, decoder_attention: bool = True
) -> KLAutoencoderConfig:
    attn = backbone.decoder_attn_resolutions if decoder_attention else ()
    return KLAutoencoderConfig(replace(backbone, z_channels=z, decoder_attn_resolutions=attn))


def _fa(
    low: ConvBackboneConfig, high: ConvBackboneConfig, zl: int, zh: int
) -> FrequencyAwareConfig:
    return FrequencyAwareConfig(low=_kl(low, zl), high=_kl(high, zh), band_scale=2.0)


_PRESETS: dict[str, tuple[type[Tokenizer], TokenizerConfig]] = {
    # MAR KL-16: no attention in the decoder.
    "kl-vae-f16d16": (AutoencoderKL, _kl(_F16, 16, decoder_attention=False)),
    "kl-vae-f16d16-tiny": (AutoencoderKL, _kl(_F16_TINY, 16, decoder_attention=False)),
    "va-vae-f16d32": (AutoencoderKL, _kl(_F16, 32)),
    "va-vae-f16d32-tiny": (AutoencoderKL, _kl(_F16_TINY, 32)),
    "ms-vq-vae": (
        MultiScaleVQVAE,
        MultiScaleVQConfig(backbone=replace(_F16, ch=160, z_channels=32), vocab_size=4096),
    ),
    "ms-vq-vae-tiny": (
        MultiScaleVQVAE,
        MultiScaleVQConfig(
            backbone=replace(_F16_TINY, z_channels=32), vocab_size=256, patch_sizes=(1, 2, 3, 4)
        ),
    ),
    "fa-vae-f16d64": (FrequencyAwareVAE, _fa(_F16, _HIGH_F8, 32, 32)),
    "fa-vae-f16d64-tiny": (FrequencyAwareVAE, _fa(_F16_TINY, _HIGH_F8_TINY, 32, 32)),
    # Equal latent budget to VA-VAE: 24 low + 8 high channels (override low/high z_channels).
    "fa-vae-f16d32": (FrequencyAwareVAE, _fa(_F16, _HIGH_F8, 24, 8)),
    "fa-vae-f16d32-tiny": (FrequencyAwareVAE, _fa(_F16_TINY, _HIGH_F8_TINY, 24, 8)),
    # The FA-VAE author's wavelet KL-VAE of the LDM experiment (HY-Wong/latent-diffusion
    # autoencoder_wav.py): 48 Haar channels at H/4 -> f4 KL AE, ch_mult (1, 2, 4), z 16.
    "kl-vae-wav-f16d16": (WaveletAutoencoderKL, WaveletKLConfig()),
    "kl-vae-wav-f16d16-tiny": (
        WaveletAutoencoderKL,
        WaveletKLConfig(backbone=_wavelet_tiny(WaveletKLConfig().backbone)),
    ),
    # The FA-VAE author's wavelet MS-VQ-VAE of the VAR experiment (HY-Wong/VAR vqvae_wav.py,
    # train_wav.py): 48 Haar channels at H/4 -> VAR's VQ AE with ch 160, ch_mult (1, 2, 4),
    # latent 256, 4096 codes. The tiny one has var-tiny's scales and vocabulary (64 px).
    "ms-vq-vae-wav": (WaveletMultiScaleVQVAE, WaveletMultiScaleVQConfig()),
    "ms-vq-vae-wav-tiny": (
        WaveletMultiScaleVQVAE,
        WaveletMultiScaleVQConfig(
            backbone=_wavelet_tiny(WaveletMultiScaleVQConfig().backbone),
            vocab_size=256,
            patch_sizes=(1, 2, 3, 4),
        ),
    ),
}


def list_tokenizers() -> list[str]:
    """Names of every preset, sorted."""
    return sorted(_PRESETS)


def _lookup(name: str) -> tuple[type[Tokenizer], TokenizerConfig]:
    if name not in _PRESETS:
        raise ValueError(f"unknown tokenizer preset {name!r}; choose one of {list_tokenizers()}")
    return _PRESETS[name]


def preset_config(name: str, **overrides: Any) -> TokenizerConfig:
    """The config of preset ``name`` with ``overrides`` applied (see :func:`create_tokenizer`)."""
    return apply_overrides(_lookup(name)[1], overrides)


def create_tokenizer(name: str, **overrides: Any) -> Tokenizer:
    """Build preset ``name`` with random weights.

    ``overrides`` replace config fields: a field of the model config (``vocab_size=512``), of its
    backbone (``ch=64``), or for FA-VAE a branch given as a dict (``low={"z_channels": 16}``).
    Unknown names or keys raise ValueError listing the valid ones.
    """
    model_cls, _ = _lookup(name)
    model = model_cls(preset_config(name, **overrides))
    model.preset = name
    return model

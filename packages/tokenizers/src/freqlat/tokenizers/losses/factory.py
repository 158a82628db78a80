"""Pick and configure the training loss that matches a tokenizer."""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from freqlat.tokenizers.base import Tokenizer
from freqlat.tokenizers.fa_vae import FrequencyAwareVAE
from freqlat.tokenizers.losses.autoencoder import AutoencoderLoss, AutoencoderLossConfig
from freqlat.tokenizers.losses.frequency import FrequencyAwareLoss, FrequencyAwareLossConfig
from freqlat.tokenizers.losses.vf import VFLoss, VFLossConfig
from freqlat.tokenizers.losses.wavelet_vq import WaveletVQLoss, WaveletVQLossConfig
from freqlat.tokenizers.vq import MultiScaleVQVAE
from freqlat.tokenizers.wavelet_vq import WaveletMultiScaleVQVAE

TokenizerLoss = AutoencoderLoss | FrequencyAwareLoss | WaveletVQLoss


def _uses_vf_by_default(model: Tokenizer) -> bool:
    preset = getattr(model, "preset", None) or ""
    return isinstance(model, FrequencyAwareVAE) or preset.startswith("va-vae")


def create_tokenizer_loss(
    model: Tokenizer,
    *,
    perceptual: nn.Module | None,
    foundation: nn.Module | None = None,
    use_vf: bool | None = None,
    config: AutoencoderLossConfig | FrequencyAwareLossConfig | WaveletVQLossConfig | None = None,
) -> TokenizerLoss:
    """The loss for ``model``: FA-VAE -> :class:`FrequencyAwareLoss`; the wavelet MS-VQ-VAE ->
    :class:`WaveletVQLoss` (its image size set from the model); MS-VQ-VAE ->
    :class:`AutoencoderLoss` with ``objective="vq"``; KL models -> ``objective="kl"``.

    ``use_vf`` (default: on for VA-VAE presets and FA-VAE, off otherwise) adds the VF loss, which
    needs ``foundation``; its projection width follows the model's (low-branch) latent channels.
    ``config`` replaces the defaults; its objective and channel counts are set to fit the model.
    """
    use_vf = _uses_vf_by_default(model) if use_vf is None else use_vf
    if use_vf and foundation is None:
        raise ValueError(
            "the VF loss needs a foundation model: pass foundation=load_foundation_model(...) "
            "(or a small ViT for tests), or use_vf=False"
        )
    if isinstance(model, WaveletMultiScaleVQVAE):
        if use_vf:
            raise ValueError("the wavelet MS-VQ-VAE trains without the VF loss")
        if config is not None and not isinstance(config, WaveletVQLossConfig):
            raise ValueError("the wavelet MS-VQ-VAE needs a WaveletVQLossConfig")
        config = replace(config or WaveletVQLossConfig(), image_size=model.image_size)
        return WaveletVQLoss(config, perceptual)
    if isinstance(model, FrequencyAwareVAE):
        if config is not None and not isinstance(config, FrequencyAwareLossConfig):
            raise ValueError("FA-VAE needs a FrequencyAwareLossConfig")
        config = config or FrequencyAwareLossConfig()
        vf_config = (config.low_vf or VFLossConfig()) if use_vf else None
        if vf_config is not None:
            vf_config = replace(vf_config, latent_channels=model.low_channels)
        config = replace(
            config,
            low_vf=vf_config,
            low=replace(config.low, objective="kl", disc_in_channels=3),
            high=replace(config.high, objective="kl", disc_in_channels=model.high.image_channels),
        )
        return FrequencyAwareLoss(config, perceptual, foundation if use_vf else None)
    if config is not None and not isinstance(config, AutoencoderLossConfig):
        raise ValueError(f"{type(model).__name__} needs an AutoencoderLossConfig")
    objective = "vq" if isinstance(model, MultiScaleVQVAE) else "kl"
    config = replace(config or AutoencoderLossConfig(), objective=objective, disc_in_channels=3)
    vf = None
    if use_vf:
        vf = VFLoss(VFLossConfig(latent_channels=model.latent_channels), foundation)
    return AutoencoderLoss(config, perceptual, vf)

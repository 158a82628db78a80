"""Training losses of the tokenizers: LDM autoencoder loss, VQ, VF alignment, FA-VAE terms and
the wavelet MS-VQ-VAE's loss.

Every loss returns a dict of named terms: ``"loss"`` is the one to backpropagate, the others are
detached values for logging. Training alternates two optimisers: the autoencoder (with the
loss's ``autoencoder_parameters()``) on ``autoencoder_step``, then the discriminator(s) on
``discriminator_step``.
"""

from freqlat.tokenizers.losses.autoencoder import AutoencoderLoss, AutoencoderLossConfig
from freqlat.tokenizers.losses.factory import TokenizerLoss, create_tokenizer_loss
from freqlat.tokenizers.losses.frequency import (
    FrequencyAwareLoss,
    FrequencyAwareLossConfig,
    detail_energy_weights,
    mask_loss,
    wavelet_band_loss,
)
from freqlat.tokenizers.losses.gan import (
    NLayerDiscriminator,
    adaptive_weight,
    adversarial_loss,
    hinge_d_loss,
    init_discriminator_weights,
    vanilla_d_loss,
)
from freqlat.tokenizers.losses.vf import (
    FoundationFeatures,
    VFLoss,
    VFLossConfig,
    default_weights_dirs,
    load_foundation_model,
    vf_alignment_loss,
)
from freqlat.tokenizers.losses.wavelet_vq import (
    WaveletVQLoss,
    WaveletVQLossConfig,
    focal_reconstruction_loss,
)
from freqlat.tokenizers.losses.wavelet_vq_discriminator import WaveletVQDiscriminator

__all__ = [
    "AutoencoderLoss",
    "AutoencoderLossConfig",
    "FoundationFeatures",
    "FrequencyAwareLoss",
    "FrequencyAwareLossConfig",
    "NLayerDiscriminator",
    "TokenizerLoss",
    "VFLoss",
    "VFLossConfig",
    "WaveletVQDiscriminator",
    "WaveletVQLoss",
    "WaveletVQLossConfig",
    "adaptive_weight",
    "adversarial_loss",
    "create_tokenizer_loss",
    "default_weights_dirs",
    "detail_energy_weights",
    "focal_reconstruction_loss",
    "hinge_d_loss",
    "init_discriminator_weights",
    "load_foundation_model",
    "mask_loss",
    "vanilla_d_loss",
    "vf_alignment_loss",
    "wavelet_band_loss",
]

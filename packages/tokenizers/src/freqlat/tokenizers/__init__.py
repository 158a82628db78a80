"""freqlat.tokenizers: KL-VAE, MS-VQ-VAE, VA-VAE and FA-VAE image tokenizers.

Build a preset with :func:`create_tokenizer`, save and load with ``save_pretrained`` /
:func:`from_pretrained`, import released weights with :func:`from_official`, resolve a
command-line tokenizer spec with :func:`load_tokenizer`. Every tokenizer gives the latent a
generator trains on with ``encode_latent`` (and a VQ model its tokens with ``encode_indices``).
"""

from freqlat.tokenizers.backbone import ConvBackboneConfig, Decoder, Encoder
from freqlat.tokenizers.base import Tokenizer
from freqlat.tokenizers.configs import (
    FrequencyAwareConfig,
    KLAutoencoderConfig,
    MultiScaleVQConfig,
)
from freqlat.tokenizers.fa_vae import FrequencyAwareVAE
from freqlat.tokenizers.haar_front_end import HaarBands, HaarFrontEnd, HaarFrontEndConfig
from freqlat.tokenizers.kl import AutoencoderKL
from freqlat.tokenizers.latent_stats import LatentStatistics, compute_latent_statistics
from freqlat.tokenizers.official import OFFICIAL_CHECKPOINTS, from_official
from freqlat.tokenizers.quantizer import MultiScaleResidualQuantizer, QuantizerOutput
from freqlat.tokenizers.registry import create_tokenizer, list_tokenizers, preset_config
from freqlat.tokenizers.specs import LoadedTokenizer, load_tokenizer, unique_names
from freqlat.tokenizers.types import BranchOutput, DiagonalGaussian, TokenizerOutput
from freqlat.tokenizers.vq import MultiScaleVQVAE
from freqlat.tokenizers.wavelet_kl import WaveletAutoencoderKL, WaveletKLConfig
from freqlat.tokenizers.wavelet_vq import (
    WaveletComponents,
    WaveletMultiScaleVQConfig,
    WaveletMultiScaleVQVAE,
    WaveletVQOutput,
)

from_pretrained = Tokenizer.from_pretrained

__all__ = [
    "OFFICIAL_CHECKPOINTS",
    "AutoencoderKL",
    "BranchOutput",
    "ConvBackboneConfig",
    "Decoder",
    "DiagonalGaussian",
    "Encoder",
    "FrequencyAwareConfig",
    "FrequencyAwareVAE",
    "HaarBands",
    "HaarFrontEnd",
    "HaarFrontEndConfig",
    "KLAutoencoderConfig",
    "LatentStatistics",
    "LoadedTokenizer",
    "MultiScaleResidualQuantizer",
    "MultiScaleVQConfig",
    "MultiScaleVQVAE",
    "QuantizerOutput",
    "Tokenizer",
    "TokenizerOutput",
    "WaveletAutoencoderKL",
    "WaveletComponents",
    "WaveletKLConfig",
    "WaveletMultiScaleVQConfig",
    "WaveletMultiScaleVQVAE",
    "WaveletVQOutput",
    "compute_latent_statistics",
    "create_tokenizer",
    "from_official",
    "from_pretrained",
    "list_tokenizers",
    "load_tokenizer",
    "preset_config",
    "unique_names",
]

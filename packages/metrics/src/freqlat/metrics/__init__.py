"""freqlat.metrics: reconstruction and generation metrics pinned to their reference implementations."""

from freqlat.metrics.accumulators import FeatureBank, FeatureStatistics, ReconstructionMetrics
from freqlat.metrics.distances import (
    InceptionScore,
    feature_statistics,
    frechet_distance,
    inception_score,
    trace_sqrt_product,
)
from freqlat.metrics.frequency import FrequencyAnalysis
from freqlat.metrics.inception import InceptionFeatures, InceptionOutput, to_uint8
from freqlat.metrics.manifold import (
    DISTANCES,
    PrecisionRecall,
    manifold_radii,
    pairwise_distances,
    precision_recall,
)
from freqlat.metrics.perceptual import LPIPS
from freqlat.metrics.pixel import (
    band_errors,
    dataset_psnr,
    per_image_mse,
    psnr,
    recon_mse,
    ssim,
)
from freqlat.metrics.reference import (
    PROTOCOL_ALIASES,
    PROTOCOLS,
    InceptionMetrics,
    Protocol,
    ReferenceStatistics,
    folder_statistics,
    get_protocol,
    read_adm_npz,
    write_adm_npz,
)
from freqlat.metrics.spectral import (
    HIGH_FREQUENCY_DEFINITION,
    RadialSpectrum,
    high_band,
    high_frequency_ratio,
)
from freqlat.metrics.weights import WeightsFile, WeightsVerificationError, verify_weights

__all__ = [
    "DISTANCES",
    "HIGH_FREQUENCY_DEFINITION",
    "LPIPS",
    "PROTOCOLS",
    "PROTOCOL_ALIASES",
    "FeatureBank",
    "FeatureStatistics",
    "FrequencyAnalysis",
    "InceptionFeatures",
    "InceptionMetrics",
    "InceptionOutput",
    "InceptionScore",
    "PrecisionRecall",
    "Protocol",
    "RadialSpectrum",
    "ReconstructionMetrics",
    "ReferenceStatistics",
    "WeightsFile",
    "WeightsVerificationError",
    "band_errors",
    "dataset_psnr",
    "feature_statistics",
    "folder_statistics",
    "frechet_distance",
    "get_protocol",
    "high_band",
    "high_frequency_ratio",
    "inception_score",
    "manifold_radii",
    "pairwise_distances",
    "per_image_mse",
    "precision_recall",
    "psnr",
    "read_adm_npz",
    "recon_mse",
    "ssim",
    "to_uint8",
    "trace_sqrt_product",
    "verify_weights",
    "write_adm_npz",
]

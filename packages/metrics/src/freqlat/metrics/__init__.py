"""freqlat.metrics: reconstruction and generation metrics pinned to their reference implementations."""

from freqlat.metrics.accumulators import FeatureBank, FeatureStatistics, ReconstructionMetrics
from freqlat.metrics.distances import (
    InceptionScore,
    PrecisionRecall,
    feature_statistics,
    frechet_distance,
    inception_score,
    manifold_radii,
    precision_recall,
    trace_sqrt_product,
)
from freqlat.metrics.frequency import FrequencyAnalysis
from freqlat.metrics.inception import InceptionFeatures, InceptionOutput, to_uint8
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

__all__ = [
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
    "ReconstructionMetrics",
    "ReferenceStatistics",
    "band_errors",
    "dataset_psnr",
    "feature_statistics",
    "folder_statistics",
    "frechet_distance",
    "get_protocol",
    "inception_score",
    "manifold_radii",
    "per_image_mse",
    "precision_recall",
    "psnr",
    "read_adm_npz",
    "recon_mse",
    "ssim",
    "to_uint8",
    "trace_sqrt_product",
    "write_adm_npz",
]

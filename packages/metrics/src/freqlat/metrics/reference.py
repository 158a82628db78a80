"""Generation/rFID metrics under named protocols, ADM-format reference batches, folder statistics.

A protocol fixes every convention that changes the number: the Inception preprocessing, the image
quantisation, the Inception Score split and the arithmetic of the precision/recall distances.
Every result dict carries its protocol's name and that arithmetic.

ADM reference batches (guided-diffusion's evaluator) are ``.npz`` files with ``arr_0`` (uint8
samples, N x H x W x 3) and optionally ``mu``/``sigma`` (pool statistics) and ``mu_s``/``sigma_s``
(spatial statistics for sFID).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from freqlat.metrics._checks import check_uint8_batch
from freqlat.metrics.accumulators import FeatureBank, FeatureStatistics
from freqlat.metrics.distances import frechet_distance, inception_score
from freqlat.metrics.inception import InceptionFeatures, ResizeMode, to_uint8
from freqlat.metrics.manifold import check_distances, precision_recall

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Protocol:
    """How a FID-family number is measured; see ``PROTOCOLS``."""

    name: str
    resize: ResizeMode
    inception_score_mode: str
    description: str
    precision_recall_distances: str = "float32"


PROTOCOLS = {
    "rfid-fa-vae": Protocol(
        "rfid-fa-vae",
        "tf1",
        "torch-fidelity",
        "rFID as the FA-VAE README measures it: originals and reconstructions rounded to uint8, "
        "torch-fidelity's Inception (TF1 bilinear resize to 299, (x-128)/128), 2048-d pool FID.",
    ),
    "rfid-lightningdit": Protocol(
        "rfid-lightningdit",
        "pytorch-fid",
        "torch-fidelity",
        "rFID with pytorch-fid's Inception preprocessing (uint8 / 255, PyTorch bilinear resize to "
        "299, 2x-1), the Inception family upstream LightningDiT reports with.",
    ),
    "gfid-adm": Protocol(
        "gfid-adm",
        "tf1",
        "adm",
        "ADM evaluator (guided-diffusion): FID and sFID against a reference batch, Inception Score "
        "over consecutive splits of 5000, precision/recall with k=3 on float16 distances as ADM "
        "computes them; TF1 resize, uint8 input.",
        "adm-float16",
    ),
}


PROTOCOL_ALIASES: dict[str, str] = {"rfid-seed": "rfid-fa-vae"}
"""Former protocol names, still accepted for one release: old name -> name."""


def get_protocol(name: str) -> Protocol:
    """Look a protocol up by name (a former name logs that it is an alias); ValueError lists
    the known names."""
    if name in PROTOCOL_ALIASES:
        logger.warning(
            "protocol %r is an alias of %r, kept for one release", name, PROTOCOL_ALIASES[name]
        )
        name = PROTOCOL_ALIASES[name]
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; known: {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


@dataclass
class ReferenceStatistics:
    """FID (``mu``, ``sigma``) and sFID (``mu_s``, ``sigma_s``) statistics of an image set."""

    mu: np.ndarray
    sigma: np.ndarray
    mu_s: np.ndarray | None = None
    sigma_s: np.ndarray | None = None

    def save_npz(self, path: str | os.PathLike[str], samples: np.ndarray | None = None) -> None:
        """Write an ADM-format .npz (``arr_0`` samples if given, then the statistics)."""
        arrays = {"mu": self.mu, "sigma": self.sigma}
        if self.mu_s is not None and self.sigma_s is not None:
            arrays.update(mu_s=self.mu_s, sigma_s=self.sigma_s)
        if samples is not None:
            arrays = {"arr_0": _as_nhwc_uint8(samples), **arrays}
        np.savez(path, **arrays)


def _as_nhwc_uint8(samples: np.ndarray | torch.Tensor) -> np.ndarray:
    array = samples.cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    if array.dtype != np.uint8 or array.ndim != 4:
        raise ValueError(f"samples must be a 4-D uint8 array, got {array.dtype} {array.shape}")
    if array.shape[-1] != 3 and array.shape[1] == 3:
        array = array.transpose(0, 2, 3, 1)
    if array.shape[-1] != 3:
        raise ValueError(f"samples must be N x H x W x 3 or N x 3 x H x W, got {array.shape}")
    return np.ascontiguousarray(array)


def write_adm_npz(
    path: str | os.PathLike[str],
    samples: np.ndarray | torch.Tensor,
    statistics: ReferenceStatistics | None = None,
) -> None:
    """Write samples (uint8, NCHW or NHWC) as ADM's ``arr_0`` (NHWC), with optional statistics."""
    if statistics is not None:
        statistics.save_npz(path, samples)
    else:
        np.savez(path, arr_0=_as_nhwc_uint8(samples))


def read_adm_npz(
    path: str | os.PathLike[str],
) -> tuple[torch.Tensor | None, ReferenceStatistics | None]:
    """Read an ADM .npz: (uint8 N x 3 x H x W samples or None, statistics or None)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"reference batch {path} not found")
    with np.load(path) as data:
        samples = None
        if "arr_0" in data:
            samples = (
                torch.from_numpy(_as_nhwc_uint8(data["arr_0"])).permute(0, 3, 1, 2).contiguous()
            )
        statistics = None
        if "mu" in data and "sigma" in data:
            has_spatial = "mu_s" in data and "sigma_s" in data
            statistics = ReferenceStatistics(
                data["mu"],
                data["sigma"],
                data["mu_s"] if has_spatial else None,
                data["sigma_s"] if has_spatial else None,
            )
    if samples is None and statistics is None:
        raise ValueError(f"{path} holds neither 'arr_0' samples nor 'mu'/'sigma' statistics")
    return samples, statistics


class InceptionMetrics:
    """Accumulates one image set's Inception features under a protocol (FID, sFID, IS, P/R).

    ``update`` takes uint8 N x 3 x H x W images, or float images in [-1, 1], which are first
    rounded to uint8 (:func:`to_uint8`) as every protocol here measures saved images.
    ``keep_features=False`` keeps only the FID/sFID sums (no IS or precision/recall, constant memory).
    ``precision_recall_distances`` overrides the protocol's arithmetic of the precision/recall
    distances (``"adm-float16"`` for ``gfid-adm``, else ``"float32"``); results record it.
    """

    def __init__(
        self,
        extractor: InceptionFeatures,
        protocol: str,
        *,
        keep_features: bool = True,
        device: torch.device | str | None = None,
        precision_recall_distances: str | None = None,
    ) -> None:
        self.protocol = get_protocol(protocol)
        if precision_recall_distances is None:
            precision_recall_distances = self.protocol.precision_recall_distances
        check_distances(precision_recall_distances)
        self.precision_recall_distances = precision_recall_distances
        if extractor.resize != self.protocol.resize:
            raise ValueError(
                f"protocol {protocol!r} needs InceptionFeatures(resize={self.protocol.resize!r}), "
                f"got resize={extractor.resize!r}"
            )
        self.extractor = extractor
        self.keep_features = keep_features
        self.pool_stats = FeatureStatistics(2048, device)
        self.spatial_stats = FeatureStatistics(2023, device)
        self.pool_bank = FeatureBank(device)
        self.logit_bank = FeatureBank(device)

    def update(self, images: torch.Tensor) -> None:
        """Add a batch of images (uint8, or float in [-1, 1])."""
        if torch.is_floating_point(images):
            images = to_uint8(images)
        check_uint8_batch(images)
        device = self.extractor.fc.weight.device
        with torch.no_grad():
            out = self.extractor(images.to(device))
        self.pool_stats.update(out.pool)
        self.spatial_stats.update(out.spatial)
        if self.keep_features:
            self.pool_bank.update(out.pool)
            self.logit_bank.update(out.logits)

    def merge(self, other: InceptionMetrics) -> None:
        """Add another accumulator (same protocol) to this one."""
        if other.protocol != self.protocol:
            raise ValueError(
                f"cannot merge protocol {other.protocol.name} into {self.protocol.name}"
            )
        self.pool_stats.merge(other.pool_stats)
        self.spatial_stats.merge(other.spatial_stats)
        self.pool_bank.merge(other.pool_bank)
        self.logit_bank.merge(other.logit_bank)

    def all_reduce(self) -> None:
        """Combine every rank's features (sums all-reduced, feature rows gathered in rank order)."""
        for accumulator in (self.pool_stats, self.spatial_stats, self.pool_bank, self.logit_bank):
            accumulator.all_reduce()

    @property
    def count(self) -> int:
        """Number of images seen."""
        return int(self.pool_stats.count)

    def statistics(self) -> ReferenceStatistics:
        """FID and sFID statistics of everything seen (float64 numpy, ADM's key names)."""
        mu, sigma = self.pool_stats.compute()
        mu_s, sigma_s = self.spatial_stats.compute()
        return ReferenceStatistics(
            mu.cpu().numpy(), sigma.cpu().numpy(), mu_s.cpu().numpy(), sigma_s.cpu().numpy()
        )

    def compute(
        self, reference: InceptionMetrics | ReferenceStatistics
    ) -> dict[str, float | str | None]:
        """Metrics of this set against ``reference``: fid, sfid, IS, precision/recall, protocol.

        ``precision_recall_distances`` records how the precision/recall distances were computed.

        sfid is None when the reference has no spatial statistics; precision/recall are None unless
        both sides kept their features and hold at least 4 samples; IS is None when this side did not keep features (or, under
        torch-fidelity's 10-split IS, has fewer than 10 samples).
        """
        ours = self.statistics()
        if isinstance(reference, InceptionMetrics):
            if reference.protocol != self.protocol:
                raise ValueError(
                    f"reference was measured under {reference.protocol.name}, not {self.protocol.name}"
                )
            theirs = reference.statistics()
        else:
            theirs = reference
        result: dict[str, float | str | None] = {
            "protocol": self.protocol.name,
            "num_samples": self.count,
            "fid": frechet_distance(ours.mu, ours.sigma, theirs.mu, theirs.sigma),
            "sfid": None,
            "inception_score": None,
            "inception_score_std": None,
            "precision": None,
            "recall": None,
            "precision_recall_distances": self.precision_recall_distances,
        }
        if theirs.mu_s is not None and theirs.sigma_s is not None:
            result["sfid"] = frechet_distance(ours.mu_s, ours.sigma_s, theirs.mu_s, theirs.sigma_s)
        # torch-fidelity's IS needs at least one sample per split (10 splits).
        enough_for_is = self.protocol.inception_score_mode == "adm" or self.count >= 10
        if self.keep_features and enough_for_is:
            score = inception_score(self.logit_bank.compute(), self.protocol.inception_score_mode)
            result["inception_score"], result["inception_score_std"] = score.mean, score.std
        both_kept = isinstance(reference, InceptionMetrics) and reference.keep_features
        # k = 3 neighbours need at least 4 samples on each side.
        if self.keep_features and both_kept and min(self.count, reference.count) > 3:
            pr = precision_recall(
                reference.pool_bank.compute(),
                self.pool_bank.compute(),
                distances=self.precision_recall_distances,
            )
            result["precision"], result["recall"] = pr.precision, pr.recall
        return result


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _list_images(folder: Path) -> list[Path]:
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return files


def _cache_key(files: list[Path], folder: Path, extractor: InceptionFeatures, protocol: str) -> str:
    digest = hashlib.sha256(protocol.encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    # The weights decide the numbers too: fingerprint the first and last layers.
    for tensor in (extractor.Conv2d_1a_3x3.conv.weight, extractor.fc.weight):
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _load_uint8(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def folder_statistics(
    folder: str | os.PathLike[str],
    extractor: InceptionFeatures,
    protocol: str,
    *,
    batch_size: int = 50,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ReferenceStatistics:
    """FID/sFID statistics of every image under ``folder`` (recursively, sorted by path).

    With ``cache_dir`` the result is stored as an ADM-style npz named by protocol and a hash of the
    file list (names, sizes, mtimes) and the Inception weights, and reused when nothing changed.
    Images of different sizes are fine (each batch holds one size; Inception resizes to 299).
    """
    root = Path(folder)
    files = _list_images(root)
    metrics = InceptionMetrics(extractor, protocol, keep_features=False)
    cache_path = None
    if cache_dir is not None:
        key = _cache_key(files, root, extractor, protocol)
        cache_path = Path(cache_dir) / f"{protocol}-{key}.npz"
        if cache_path.is_file():
            _, cached = read_adm_npz(cache_path)
            if cached is not None:
                return cached
    batch: list[torch.Tensor] = []
    for path in files:
        image = _load_uint8(path)
        if batch and (image.shape != batch[0].shape or len(batch) == batch_size):
            metrics.update(torch.stack(batch))
            batch = []
        batch.append(image)
    metrics.update(torch.stack(batch))
    statistics = metrics.statistics()
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_path.with_suffix(".tmp.npz")
        statistics.save_npz(temporary)
        os.replace(temporary, cache_path)
    return statistics

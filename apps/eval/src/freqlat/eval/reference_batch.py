"""The reference batch of the generation metrics: an ADM ``.npz``, measured once and cached.

openai/guided-diffusion ``evaluations/evaluator.py`` compares a sample batch with a reference
batch (for ImageNet 256: ``VIRTUAL_imagenet256_labeled.npz``, 10,000 images ``arr_0`` with
their statistics ``mu``/``sigma``/``mu_s``/``sigma_s``). It takes FID and sFID against the
statistics stored in the file when it has them (else against the statistics of its images), and
precision/recall against the Inception pool features of its images. We do the same; the pool
features, the statistics of the images and their radially averaged power spectrum are cached in
``cache_dir``, in files named by the sha256 of the reference file (and, for the Inception parts,
by the protocol and the Inception weights), written atomically.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from freqlat.eval.sample_store import npz_array_shape
from freqlat.metrics import (
    InceptionFeatures,
    InceptionMetrics,
    RadialSpectrum,
    ReferenceStatistics,
    read_adm_npz,
)
from freqlat.metrics.weights import file_sha256
from freqlat.tokenizers.official import default_cache_dir

logger = logging.getLogger("freqlat.eval")

PROTOCOL = "gfid-adm"


def default_stats_cache() -> Path:
    """``$FREQLAT_CACHE/reference_stats`` (``~/.cache/freqlat/reference_stats``)."""
    return default_cache_dir("reference_stats")


def check_reference_file(path: str | os.PathLike[str]) -> None:
    """FileNotFoundError / ValueError unless ``path`` is an npz with images or statistics."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--reference {file} does not exist")
    try:
        data = np.load(file)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--reference {file} is not an .npz file: {exc}") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"--reference {file} is a single array, not an .npz archive")
    with data:
        keys = set(data.files)
    if "arr_0" not in keys and not {"mu", "sigma"} <= keys:
        raise ValueError(
            f"--reference {file} holds neither 'arr_0' images nor 'mu'/'sigma' statistics "
            f"(keys {sorted(keys)}); expected an ADM reference batch"
        )


def _weights_key(extractor: InceptionFeatures) -> str:
    digest = hashlib.sha256(extractor.resize.encode())
    for tensor in (extractor.Conv2d_1a_3x3.conv.weight, extractor.fc.weight):
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(temp, path)


@dataclass
class ReferenceBatch:
    """What the generation metrics need of the reference batch, or why it cannot give it.

    ``statistics``: the FID/sFID statistics (the file's own, else those of its images);
    ``pool``: the Inception pool features of its images (precision/recall); ``spectrum``: the
    power spectrum of its images; ``missing``: column -> why this reference cannot give it.
    """

    path: Path
    sha256: str
    num_images: int | None
    statistics: ReferenceStatistics | None = None
    statistics_source: str = ""
    pool: torch.Tensor | None = None
    spectrum: RadialSpectrum | None = None
    missing: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the table's protocol."""
        images = f"{self.num_images} images" if self.num_images else "no images"
        size = ""
        if self.spectrum is not None and self.spectrum.image_size is not None:
            size = f" of {self.spectrum.image_size[0]} x {self.spectrum.image_size[1]} px"
        source = f"; FID/sFID statistics {self.statistics_source}" if self.statistics else ""
        return f"{self.path} (sha256 {self.sha256[:16]}...), {images}{size}{source}"


class _LazyImages:
    """The reference file's images and statistics, read at most once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: tuple[torch.Tensor | None, ReferenceStatistics | None] | None = None

    def get(self) -> tuple[torch.Tensor | None, ReferenceStatistics | None]:
        if self._data is None:
            logger.info("reading reference batch %s", self.path)
            self._data = read_adm_npz(self.path)
        return self._data


def _spectrum(
    lazy: _LazyImages, cache: Path, batch_size: int, device: torch.device
) -> RadialSpectrum | None:
    spectrum = RadialSpectrum(device)
    if cache.is_file():
        with np.load(cache) as data:
            spectrum.image_size = (int(data["height"]), int(data["width"]))
            spectrum.total = torch.from_numpy(data["total"]).to(device)
            spectrum.count += float(data["count"])
        return spectrum
    images, _ = lazy.get()
    if images is None:
        return None
    for start in range(0, len(images), batch_size):
        spectrum.update(images[start : start + batch_size])
    height, width = spectrum.image_size
    _save_npz(
        cache,
        total=spectrum.total.cpu().numpy(),
        count=np.array(float(spectrum.count)),
        height=np.array(height),
        width=np.array(width),
    )
    return spectrum


def _inception(
    lazy: _LazyImages,
    extractor: InceptionFeatures,
    cache: Path,
    batch_size: int,
    device: torch.device,
) -> tuple[torch.Tensor, ReferenceStatistics] | None:
    """Pool features and statistics of the reference images (cached), None without images."""
    if cache.is_file():
        with np.load(cache) as data:
            statistics = ReferenceStatistics(
                data["mu"], data["sigma"], data["mu_s"], data["sigma_s"]
            )
            return torch.from_numpy(data["pool"]), statistics
    images, _ = lazy.get()
    if images is None:
        return None
    metrics = InceptionMetrics(extractor, PROTOCOL, keep_features=True, device=device)
    for start in range(0, len(images), batch_size):
        metrics.update(images[start : start + batch_size])
    pool = metrics.pool_bank.compute().cpu()
    statistics = metrics.statistics()
    _save_npz(
        cache,
        pool=pool.numpy(),
        mu=statistics.mu,
        sigma=statistics.sigma,
        mu_s=statistics.mu_s,
        sigma_s=statistics.sigma_s,
    )
    return pool, statistics


def prepare_reference(
    path: str | os.PathLike[str],
    extractor: InceptionFeatures | None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 100,
    device: torch.device | str = "cpu",
) -> ReferenceBatch:
    """Measure (or read from the cache) what the metrics need of the reference batch ``path``.

    Without ``extractor`` (no Inception weights) only the spectrum is measured.
    """
    file = Path(path)
    check_reference_file(file)
    device = torch.device(device)
    cache = Path(cache_dir) if cache_dir is not None else default_stats_cache()
    sha = file_sha256(file)
    shape = npz_array_shape(file)
    reference = ReferenceBatch(file, sha, shape[0] if shape else None)
    lazy = _LazyImages(file)
    reference.spectrum = _spectrum(lazy, cache / f"{sha[:16]}-spectrum.npz", batch_size, device)
    if reference.spectrum is None:
        reason = f"the reference batch {file} holds no images (arr_0)"
        reference.missing.update({"HF ratio": reason, "Precision": reason, "Recall": reason})
    if extractor is None:
        return reference
    name = f"{sha[:16]}-{PROTOCOL}-{_weights_key(extractor)}.npz"
    measured = _inception(lazy, extractor, cache / name, batch_size, device)
    if measured is not None:
        reference.pool = measured[0]
    with np.load(file) as data:
        if {"mu", "sigma"} <= set(data.files):
            spatial = {"mu_s", "sigma_s"} <= set(data.files)
            reference.statistics = ReferenceStatistics(
                data["mu"],
                data["sigma"],
                data["mu_s"] if spatial else None,
                data["sigma_s"] if spatial else None,
            )
            reference.statistics_source = "stored in the file (as the ADM evaluator uses them)"
    if reference.statistics is None and measured is not None:
        reference.statistics = measured[1]
        reference.statistics_source = "computed from its images (the file stores none)"
    if reference.statistics is not None and reference.statistics.mu_s is None:
        reference.missing["sFID"] = f"the reference batch {file} stores no mu_s/sigma_s"
    return reference

"""Scores computed from Inception features: Frechet distance (FID, sFID), Inception Score, and
improved precision/recall (Kynkaanniemi et al. 2019, as ADM's evaluator runs it).

Everything here is plain tensor math on features, so it runs on CPU or GPU unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg.lapack
import torch

from freqlat.metrics._checks import check_features

ArrayLike = torch.Tensor | np.ndarray


def _as_float64(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    x = x.to(torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def feature_statistics(features: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance (divides by N - 1, like ``np.cov``) of N x D features, float64."""
    f = _as_float64(features, "features")
    check_features(f, "features", min_rows=2)
    mu = f.mean(0)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)
    return mu, sigma


def _psd_factor(sigma: torch.Tensor) -> torch.Tensor:
    """A d x r matrix F with F F^T = sigma, for a symmetric positive semi-definite ``sigma``.

    Cholesky when sigma is positive definite (r = d, stays on sigma's device); otherwise LAPACK's
    pivoted Cholesky ``dpstrf`` (on CPU), which stops at the numerical rank r. Both cost O(d^2 r),
    far less than an eigendecomposition.
    """
    factor, info = torch.linalg.cholesky_ex(sigma)
    if int(info) == 0:
        return factor
    lower, pivots, rank, _ = scipy.linalg.lapack.dpstrf(sigma.cpu().numpy(), lower=1)
    columns = np.tril(lower)[:, :rank]
    factor = np.zeros_like(columns)
    factor[pivots - 1] = columns  # undo the symmetric pivoting: sigma = P L L^T P^T
    return torch.from_numpy(factor).to(sigma.device)


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """tr(sqrt(sigma1 @ sigma2)) for symmetric positive semi-definite matrices, in float64.

    With sigma1 = F F^T, the product sigma1 sigma2 has the same non-zero eigenvalues as the
    symmetric PSD matrix F^T sigma2 F, so the trace of its square root is the sum of square roots
    of that matrix's eigenvalues (round-off negatives clipped to 0). Unlike scipy's general
    ``sqrtm`` this cannot fail on nearly singular products or return spurious complex parts, and
    singular covariances (fewer samples than dimensions) are handled exactly.
    """
    factor = _psd_factor(sigma1)
    middle = factor.T @ sigma2 @ factor
    middle = (middle + middle.T) / 2
    return torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrt(sigma1 sigma2))``. With Inception
    pool statistics this is FID; with the spatial features of :class:`InceptionFeatures` it is
    sFID. Accepts torch tensors or numpy arrays (e.g. the ``mu``/``sigma`` of an ADM .npz).
    """
    m1, m2 = _as_float64(mu1, "mu1"), _as_float64(mu2, "mu2")
    s1, s2 = _as_float64(sigma1, "sigma1"), _as_float64(sigma2, "sigma2")
    if m1.dim() != 1 or m1.shape != m2.shape:
        raise ValueError(
            f"mu1 and mu2 must be vectors of one length, got {tuple(m1.shape)}, {tuple(m2.shape)}"
        )
    d = m1.shape[0]
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise ValueError(f"{name} must be {d} x {d} to match the means, got {tuple(s.shape)}")
    s2 = s2.to(s1.device)
    diff = m1 - m2.to(m1.device)
    value = diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * trace_sqrt_product(s1, s2)
    return float(value)


@dataclass(frozen=True)
class InceptionScore:
    """Inception Score over splits: ``mean`` and ``std`` across splits, and how they were cut."""

    mean: float
    std: float
    mode: str
    num_splits: int


def _split_score(log_p: torch.Tensor) -> float:
    # exp(E_x KL(p(y|x) || p(y))) with p(y) the split's mean prediction.
    log_marginal = torch.logsumexp(log_p, dim=0) - np.log(log_p.shape[0])
    kl = (log_p.exp() * (log_p - log_marginal)).sum(1).mean()
    return float(kl.exp())


def inception_score(
    logits: ArrayLike,
    mode: Literal["adm", "torch-fidelity"],
    *,
    split_size: int = 5000,
    splits: int = 10,
    seed: int = 2020,
) -> InceptionScore:
    """Inception Score from N x 1008 unbiased logits (pool features times the softmax weights).

    ``mode="adm"``: ADM evaluator's split - consecutive chunks of ``split_size`` (5000) samples in
    the given order, no shuffling, the last chunk may be shorter; ADM reports the ``mean``.
    ``mode="torch-fidelity"``: torch-fidelity's - the rows are permuted with
    ``numpy.random.RandomState(seed).permutation(N)`` (seed 2020), then cut into ``splits`` (10)
    parts at ``i * N // splits``; mean and (population) std over splits.
    Both evaluate in float64 with a log-softmax.
    """
    x = _as_float64(logits, "logits")
    check_features(x, "logits", min_rows=1)
    n = x.shape[0]
    log_p = torch.log_softmax(x, dim=1)
    if mode == "adm":
        if split_size < 1:
            raise ValueError(f"split_size must be positive, got {split_size}")
        parts = [log_p[i : i + split_size] for i in range(0, n, split_size)]
    elif mode == "torch-fidelity":
        if not 1 <= splits <= n:
            raise ValueError(f"splits must be in [1, N={n}], got {splits}")
        order = torch.from_numpy(np.random.RandomState(seed).permutation(n)).to(x.device)
        log_p = log_p[order]
        parts = [log_p[i * n // splits : (i + 1) * n // splits] for i in range(splits)]
    else:
        raise ValueError(f"mode must be 'adm' or 'torch-fidelity', got {mode!r}")
    scores = np.array([_split_score(part) for part in parts])
    return InceptionScore(float(scores.mean()), float(scores.std()), mode, len(parts))


@dataclass(frozen=True)
class PrecisionRecall:
    """Improved precision (fake samples on the real manifold) and recall (real on the fake one)."""

    precision: float
    recall: float
    k: int


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    sq = a.square().sum(1, keepdim=True) - 2 * a @ b.T + b.square().sum(1)
    return sq.clamp_(min=0)


def manifold_radii(features: torch.Tensor, k: int = 3, batch_size: int = 10000) -> torch.Tensor:
    """Squared distance from each row to its k-th nearest other row (the row itself excluded).

    Works block by block (``batch_size`` x ``batch_size`` distances at a time), keeping a running
    k+1 smallest per row, so memory stays bounded for 50k x 50k on one GPU.
    """
    n = features.shape[0]
    if n <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} samples, got {n}")
    radii = []
    for rows in features.split(batch_size):
        nearest = torch.full((rows.shape[0], 0), float("inf"), dtype=rows.dtype, device=rows.device)
        for cols in features.split(batch_size):
            candidates = torch.cat([nearest, _squared_distances(rows, cols)], dim=1)
            nearest = candidates.topk(min(k + 1, candidates.shape[1]), dim=1, largest=False).values
        # Column 0 is the row's distance to itself; column k is the k-th neighbour.
        radii.append(nearest[:, k])
    return torch.cat(radii)


def _fraction_inside(
    queries: torch.Tensor, anchors: torch.Tensor, anchor_radii: torch.Tensor, batch_size: int
) -> float:
    inside = []
    for rows in queries.split(batch_size):
        hit = torch.zeros(rows.shape[0], dtype=torch.bool, device=rows.device)
        for cols, radii in zip(
            anchors.split(batch_size), anchor_radii.split(batch_size), strict=True
        ):
            hit |= (_squared_distances(rows, cols) <= radii).any(1)
        inside.append(hit)
    return float(torch.cat(inside).double().mean())


def precision_recall(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    k: int = 3,
    batch_size: int = 10000,
    dtype: torch.dtype = torch.float32,
) -> PrecisionRecall:
    """Improved precision/recall with ADM's semantics (its ``ManifoldEstimator``, k = 3).

    Each sample's radius is the distance to its k-th nearest neighbour in its own set. Precision is
    the fraction of ``fake`` rows within the radius of at least one ``real`` row; recall is the
    fraction of ``real`` rows within the radius of at least one ``fake`` row. ADM evaluates the
    distances in float16 (float32 where that overflows); here they are in ``dtype`` (float32 by
    default). Distances are computed in ``batch_size`` blocks on the features' device.
    """
    check_features(real, "real", min_rows=k + 1)
    check_features(fake, "fake", min_rows=k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real and fake features differ in width: {real.shape[1]} vs {fake.shape[1]}"
        )
    real, fake = real.to(dtype), fake.to(dtype=dtype, device=real.device)
    real_radii = manifold_radii(real, k, batch_size)
    fake_radii = manifold_radii(fake, k, batch_size)
    precision = _fraction_inside(fake, real, real_radii, batch_size)
    recall = _fraction_inside(real, fake, fake_radii, batch_size)
    return PrecisionRecall(precision, recall, k)

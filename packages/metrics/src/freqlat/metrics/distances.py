"""Scores computed from Inception features: Frechet distance (FID, sFID) and Inception Score.

Everything here is plain tensor math on features, so it runs on CPU or GPU unchanged. Improved
precision/recall lives in :mod:`freqlat.metrics.manifold`.
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

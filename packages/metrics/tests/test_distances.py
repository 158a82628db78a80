"""Pins FID/sFID, IS and precision/recall to closed forms and to the reference implementations."""

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_full

from freqlat.metrics import (
    feature_statistics,
    frechet_distance,
    inception_score,
    precision_recall,
)


def _random_orthogonal(d: int, generator: torch.Generator) -> torch.Tensor:
    # A product of three Householder reflections: a dense orthogonal matrix, cheap to build.
    q = torch.eye(d, dtype=torch.float64)
    for _ in range(3):
        v = torch.randn(d, 1, generator=generator, dtype=torch.float64)
        v /= v.norm()
        q = q - 2 * (q @ v) @ v.T
    return q


def test_frechet_distance_matches_closed_form_and_is_rotation_invariant_at_2048():
    g = torch.Generator().manual_seed(0)
    d = 2048
    a = torch.rand(d, generator=g, dtype=torch.float64) * 2 + 0.01
    b = torch.rand(d, generator=g, dtype=torch.float64) * 2 + 0.01
    mu1 = torch.randn(d, generator=g, dtype=torch.float64)
    mu2 = torch.randn(d, generator=g, dtype=torch.float64)
    closed_form = float((mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum())
    # Commuting covariances: both diagonal in the basis of one random orthogonal matrix.
    rot = _random_orthogonal(d, g)
    value = frechet_distance(rot @ mu1, (rot * a) @ rot.T, rot @ mu2, (rot * b) @ rot.T)
    assert abs(value - closed_form) <= 1e-9 * closed_form


def test_frechet_distance_of_a_set_with_itself_is_zero_even_when_singular():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(50, 256, generator=g)  # n < d: the covariance is singular
    mu, sigma = feature_statistics(feats)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * float(torch.trace(sigma))


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated")
def test_frechet_distance_matches_pytorch_fid_scipy_version():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 64))
    y = rng.normal(size=(300, 64)) @ rng.normal(size=(64, 64)) * 0.3 + 0.5
    mu1, s1 = x.mean(0), np.cov(x, rowvar=False)
    mu2, s2 = y.mean(0), np.cov(y, rowvar=False)
    ours = frechet_distance(mu1, s1, mu2, s2)
    reference = calculate_frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(reference, rel=1e-9)


def test_feature_statistics_equal_numpy_mean_and_cov():
    x = np.random.default_rng(3).normal(size=(20, 5))
    mu, sigma = feature_statistics(torch.from_numpy(x))
    np.testing.assert_allclose(mu.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x, rowvar=False), rtol=1e-12)


def test_statistics_and_distance_reject_bad_input():
    with pytest.raises(ValueError, match="at least 2 rows"):
        feature_statistics(torch.randn(1, 8))
    with pytest.raises(ValueError, match="must be 3 x 3"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan]), np.eye(1), np.zeros(1), np.eye(1))


@pytest.mark.parametrize("mode", ["adm", "torch-fidelity"])
def test_inception_score_of_uniform_predictions_is_one(mode):
    result = inception_score(torch.zeros(100, 1008), mode, split_size=50, splits=2)
    assert result.mean == pytest.approx(1.0, abs=1e-12)
    assert result.mode == mode


@pytest.mark.parametrize("mode", ["adm", "torch-fidelity"])
def test_inception_score_of_k_evenly_spread_one_hots_is_k(mode):
    k, per_class = 10, 30
    labels = torch.arange(k).repeat(per_class)
    logits = 1000.0 * torch.nn.functional.one_hot(labels, 1008).double()
    result = inception_score(logits, mode, split_size=len(labels), splits=1)
    assert result.mean == pytest.approx(k, rel=1e-12)


def test_inception_score_matches_torch_fidelity_on_the_same_logits():
    logits = torch.randn(1000, 1008, generator=torch.Generator().manual_seed(4)) * 3
    ours = inception_score(logits, "torch-fidelity")
    reference = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    assert ours.num_splits == 10
    assert ours.mean == pytest.approx(reference["inception_score_mean"], rel=1e-12)
    assert ours.std == pytest.approx(reference["inception_score_std"], rel=1e-9)


def _adm_inception_score(probabilities: np.ndarray, split_size: int) -> float:
    # ADM evaluator's formula (guided-diffusion evaluations/evaluator.py), in float64.
    scores = []
    for i in range(0, len(probabilities), split_size):
        part = probabilities[i : i + split_size]
        kl = part * (np.log(part) - np.log(np.mean(part, 0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores))


def test_inception_score_matches_adm_formula_with_a_short_last_split():
    logits = torch.randn(
        12000, 1008, generator=torch.Generator().manual_seed(5), dtype=torch.float64
    )
    ours = inception_score(logits, "adm")
    reference = _adm_inception_score(torch.softmax(logits, 1).numpy(), 5000)
    assert ours.num_splits == 3
    assert ours.mean == pytest.approx(reference, rel=1e-12)


def test_inception_score_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        inception_score(torch.zeros(4, 10), "tf")


def test_precision_recall_of_identical_sets_is_one_and_of_far_clusters_is_zero():
    feats = torch.randn(64, 16, generator=torch.Generator().manual_seed(6))
    same = precision_recall(feats, feats.clone())
    assert (same.precision, same.recall) == (1.0, 1.0)
    far = precision_recall(feats, feats + 1000.0)
    assert (far.precision, far.recall) == (0.0, 0.0)


def _brute_force_precision_recall(real, fake, k):
    def radii(x):
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values

    precision = (torch.cdist(fake, real) <= radii(real)).any(1).double().mean()
    recall = (torch.cdist(real, fake) <= radii(fake)).any(1).double().mean()
    return float(precision), float(recall)


def test_batched_precision_recall_matches_brute_force_and_torch_fidelity():
    g = torch.Generator().manual_seed(7)
    real = torch.randn(300, 32, generator=g, dtype=torch.float64)
    fake = torch.randn(250, 32, generator=g, dtype=torch.float64) * 1.3 + 0.4
    batched = precision_recall(real, fake, batch_size=37, distances="float64")
    assert 0.0 < batched.precision < 1.0 and 0.0 < batched.recall < 1.0
    assert (batched.precision, batched.recall) == _brute_force_precision_recall(real, fake, 3)
    # torch-fidelity's convention: features_1 is generated, features_2 is real.
    tf_precision, tf_recall = calculate_precision_recall_full(fake.float(), real.float(), 3, 10000)
    ours32 = precision_recall(real.float(), fake.float())
    # torch-fidelity averages in float32; 1e-6 is far below one sample's share (1/250).
    assert ours32.precision == pytest.approx(tf_precision, abs=1e-6)
    assert ours32.recall == pytest.approx(tf_recall, abs=1e-6)


def test_precision_recall_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 4 rows"):
        precision_recall(torch.randn(3, 4), torch.randn(10, 4))
    with pytest.raises(ValueError, match="width"):
        precision_recall(torch.randn(10, 4), torch.randn(10, 5))

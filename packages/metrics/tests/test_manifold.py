"""Precision/recall of protocol gfid-adm are ADM's: float16 distances, ADM's blocks and radii.

The reference below re-implements, in numpy, what guided-diffusion's
``evaluations/evaluator.py`` does in ``ManifoldEstimator`` (radii from ``np.partition`` of whole
rows of a row-block x col-block distance matrix; precision and recall from one pass over
reference-row x sample-column blocks with ``distance <= radius``) and in ``DistanceBlock``
(TensorFlow's float16 cast, ``square``, ``reduce_sum``, ``matmul``, ``-``, ``+`` and ``maximum``,
falling back to float32 for a block with a non-finite value), with TensorFlow's GPU kernels'
float16 arithmetic: numpy's float16 operations round every result to float16 as TensorFlow's
element-wise float16 operations do; ``reduce_sum`` adds in float16 in the order of TensorFlow's
row reduction (per-thread block-striped sums, a shuffle tree per warp, warps in order); the
matmul accumulates in float32 or wider and rounds once.
"""

import numpy as np
import pytest
import torch

from freqlat.metrics import (
    InceptionMetrics,
    manifold_radii,
    pairwise_distances,
    precision_recall,
)


def _tensorflow_gpu_row_sum(x16: np.ndarray) -> np.ndarray:
    """Float16 row sums in the order TensorFlow's GPU row reduction adds them."""
    width = x16.shape[1]
    threads = 256 if width >= 1024 else 32
    per_thread = [None] * threads
    for thread in range(min(threads, width)):
        total = x16[:, thread]
        for column in range(thread + threads, width, threads):
            total = total + x16[:, column]
        per_thread[thread] = total
    warp_totals = []
    for warp in range(threads // 32):
        lanes = per_thread[32 * warp : 32 * warp + 32]
        holding = sum(lane is not None for lane in lanes)
        offset = 1
        while offset < 32:
            lanes = [
                lanes[i] + lanes[i + offset] if i + offset < holding else lanes[i]
                for i in range(32)
            ]
            offset *= 2
        warp_totals.append(lanes[0])
    total = warp_totals[0]
    for warp_total in warp_totals[1:]:
        total = total + warp_total
    return total


def _adm_distance_block(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):  # float16 overflow is part of the test
        u16 = u.astype(np.float32).astype(np.float16)
        v16 = v.astype(np.float32).astype(np.float16)
        norm_u = _tensorflow_gpu_row_sum(np.square(u16))[:, None]
        norm_v = _tensorflow_gpu_row_sum(np.square(v16))[None, :]
        matmul = (u16.astype(np.float64) @ v16.astype(np.float64).T).astype(np.float32)
        block = np.maximum(norm_u - 2 * matmul.astype(np.float16) + norm_v, np.float16(0))
    if not np.isfinite(block).all():
        u32, v32 = u.astype(np.float32), v.astype(np.float32)
        block = np.maximum((u32**2).sum(1)[:, None] - 2 * u32 @ v32.T + (v32**2).sum(1)[None, :], 0)
    return block.astype(np.float32)


def _adm_radii(features: np.ndarray, batch: int, k: int = 3) -> np.ndarray:
    n = len(features)
    radii = np.zeros(n, dtype=np.float32)
    for start in range(0, n, batch):
        rows = features[start : start + batch]
        whole_rows = np.concatenate(
            [_adm_distance_block(rows, features[c : c + batch]) for c in range(0, n, batch)],
            axis=1,
        )
        radii[start : start + batch] = np.partition(whole_rows, np.arange(k + 1), axis=1)[:, k]
    return radii


def _adm_precision_recall(real: np.ndarray, fake: np.ndarray, batch: int) -> tuple[float, float]:
    real_radii, fake_radii = _adm_radii(real, batch), _adm_radii(fake, batch)
    real_inside = np.zeros(len(real), dtype=bool)
    fake_inside = np.zeros(len(fake), dtype=bool)
    for r in range(0, len(real), batch):
        for c in range(0, len(fake), batch):
            block = _adm_distance_block(real[r : r + batch], fake[c : c + batch])
            real_inside[r : r + batch] |= (block <= fake_radii[None, c : c + batch]).any(1)
            fake_inside[c : c + batch] |= (block <= real_radii[r : r + batch, None]).any(0)
    return float(fake_inside.astype(np.float64).mean()), float(
        real_inside.astype(np.float64).mean()
    )


def _inception_like(n: int, classes: int, seed: int) -> torch.Tensor:
    """Non-negative 2048-d pool-like features, squared norms ~ 500, clustered by class.

    Every set draws from the same 25 class centroids; ``classes`` limits which ones it uses.
    """
    torch.manual_seed(0)
    centroids = torch.distributions.Gamma(0.6, 2.0).sample((25, 2048))
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    jitter = torch.rand(n, 2048, generator=g) * 0.8 + 0.6
    return (centroids[labels] * jitter).float()


@pytest.mark.parametrize("batch", [128, 10000])
def test_adm_float16_precision_recall_equal_adm_evaluator_arithmetic(batch):
    real, fake = _inception_like(300, 20, seed=1), _inception_like(260, 25, seed=2)
    ours = precision_recall(real, fake, batch_size=batch, distances="adm-float16")
    assert ours.distances == "adm-float16"
    expected_radii = _adm_radii(real.numpy(), batch)
    assert torch.equal(
        manifold_radii(real, batch_size=batch, distances="adm-float16"),
        torch.from_numpy(expected_radii),
    )
    assert (ours.precision, ours.recall) == _adm_precision_recall(real.numpy(), fake.numpy(), batch)
    assert 0 < ours.precision < 1 and 0 < ours.recall < 1
    block = pairwise_distances(real[:50], fake[:40], "adm-float16")
    norms = pairwise_distances(real[:50], torch.zeros(1, 2048), "adm-float16")[:, 0]
    expected_norms = _tensorflow_gpu_row_sum(np.square(real[:50].numpy().astype(np.float16)))
    assert torch.equal(norms, torch.from_numpy(expected_norms.astype(np.float32)))
    assert torch.equal(
        block, torch.from_numpy(_adm_distance_block(real[:50].numpy(), fake[:40].numpy()))
    )
    assert torch.equal(block, block.half().float())  # float16 values


@pytest.mark.parametrize("width", [20, 40, 1023, 1024, 2048, 3000])
def test_float16_squared_norms_are_added_in_tensorflow_gpu_order(width):
    x = torch.rand(16, width, generator=torch.Generator().manual_seed(width)) * 2
    norms = pairwise_distances(x, torch.zeros(1, width), "adm-float16")[:, 0]
    expected = _tensorflow_gpu_row_sum(np.square(x.numpy().astype(np.float16)))
    assert torch.equal(norms, torch.from_numpy(expected.astype(np.float32)))
    # a different order of float16 additions gives other values for some rows
    sequential = np.square(x.numpy().astype(np.float16)).cumsum(1, dtype=np.float16)[:, -1]
    assert width < 64 or not np.array_equal(sequential, expected)


def _tie_case() -> tuple[torch.Tensor, torch.Tensor]:
    """A generated sample at 30.005 from a reference sample whose radius is exactly 30.

    In float32 its squared distance, 900.3, exceeds the radius 900; in float16 the sample is
    rounded to 30 and the distance equals the radius, so ADM counts it inside.
    """
    real = torch.zeros(4, 2048)
    real[:, 0] = torch.tensor([0.0, 10.0, 20.0, 30.0])
    fake = torch.zeros(4, 2048)
    fake[:, 0] = torch.tensor([-30.005, 100.0, 150.0, 200.0])
    return real, fake


def test_float16_and_float32_distances_decide_a_tie_at_the_radius_differently():
    real, fake = _tie_case()
    adm = precision_recall(real, fake, distances="adm-float16")
    plain = precision_recall(real, fake, distances="float32")
    assert (adm.precision, plain.precision) == (0.25, 0.0)
    assert adm.recall == plain.recall == 1.0
    assert _adm_precision_recall(real.numpy(), fake.numpy(), 10000) == (0.25, 1.0)


def test_a_block_that_overflows_float16_falls_back_to_float32_as_adm_does():
    real, fake = _tie_case()
    big = real * 1000  # squared norms far beyond float16's 65504
    block = pairwise_distances(big, fake, "adm-float16")
    assert torch.equal(block, pairwise_distances(big, fake, "float32"))
    assert torch.equal(block, torch.from_numpy(_adm_distance_block(big.numpy(), fake.numpy())))


def _metrics_with_pool_features(extractor, protocol, pool, **options) -> InceptionMetrics:
    metrics = InceptionMetrics(extractor, protocol, **options)
    n = pool.shape[0]
    metrics.pool_stats.update(pool)
    metrics.pool_bank.update(pool)
    metrics.spatial_stats.update(torch.randn(n, 2023, generator=torch.Generator().manual_seed(n)))
    metrics.logit_bank.update(torch.zeros(n, 1008))
    return metrics


def test_gfid_adm_precision_recall_use_adm_float16_distances_and_record_them(
    inception_extractor,
):
    real, fake = _tie_case()
    reference = _metrics_with_pool_features(inception_extractor, "gfid-adm", real)
    result = _metrics_with_pool_features(inception_extractor, "gfid-adm", fake).compute(reference)
    assert result["precision_recall_distances"] == "adm-float16"
    assert (result["precision"], result["recall"]) == (0.25, 1.0)  # ADM's evaluator's numbers

    float32 = _metrics_with_pool_features(
        inception_extractor, "gfid-adm", fake, precision_recall_distances="float32"
    ).compute(reference)
    assert float32["precision_recall_distances"] == "float32"
    assert float32["precision"] == 0.0
    with pytest.raises(ValueError, match="distances must be one of"):
        InceptionMetrics(inception_extractor, "gfid-adm", precision_recall_distances="bf16")


def test_other_protocols_keep_float32_distances(inception_extractor):
    real, fake = _tie_case()
    extractor = inception_extractor
    reference = _metrics_with_pool_features(extractor, "rfid-seed", real)
    result = _metrics_with_pool_features(extractor, "rfid-seed", fake).compute(reference)
    assert result["precision_recall_distances"] == "float32" and result["precision"] == 0.0

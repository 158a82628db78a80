"""Improved precision and recall (Kynkaanniemi et al. 2019) as ADM's evaluator computes them.

ADM's evaluator (openai/guided-diffusion ``evaluations/evaluator.py``, ``ManifoldEstimator`` and
``DistanceBlock``) works on blocks of 10,000 x 10,000 pairwise squared distances:

- radii: for each sample, the distance to its k-th nearest neighbour in its own set (the row's
  (k+1)-th smallest value, the sample itself included), k = 3;
- precision: the fraction of generated samples within the radius of at least one reference
  sample; recall: the fraction of reference samples within the radius of at least one generated
  sample (``distance <= radius``), from blocks with the reference samples as rows.

Its ``DistanceBlock`` computes every block in TensorFlow float16: the float32 features are cast to
float16, ``|u|^2`` is ``reduce_sum(square(u))``, the inner products are one float16 ``matmul``,
and ``max(|u|^2 - 2 u.v + |v|^2, 0)`` is evaluated in float16, left to right; a block with a
non-finite value is recomputed in float32. Distances are float16 numbers (spacing 0.25 at 300),
so ties with a radius are common, and float32 distances decide some samples differently.

``distances="adm-float16"`` emulates that arithmetic, as TensorFlow runs it on a GPU, on any
device: inputs and every element-wise result are rounded to float16 exactly as float16
operations round them (float32 arithmetic followed by a float16 rounding is correctly rounded
for +, -, x); the squared norms are added in float16 in the order of TensorFlow's GPU row
reduction (see :func:`_tensorflow_float16_row_sum`); the inner products, which cuBLAS accumulates
in float32, are accumulated in float64 and rounded once. The order of the norms' float16
additions matters: on synthetic Inception-shaped features, correctly rounded norms instead
changed about 2% of the precision/recall decisions, while accumulating the inner products in
float32 in another order than cuBLAS's changed none. TensorFlow on a CPU sums differently again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from freqlat.metrics._checks import check_features

Distances = Literal["adm-float16", "float32", "float64"]
DISTANCES: tuple[str, ...] = ("adm-float16", "float32", "float64")
"""How pairwise distances are computed: ADM's float16 arithmetic, or plainly in float32/float64."""


@dataclass(frozen=True)
class PrecisionRecall:
    """Improved precision (fake samples on the real manifold) and recall (real on the fake one).

    ``distances`` records the arithmetic of the pairwise distances (see :data:`DISTANCES`).
    """

    precision: float
    recall: float
    k: int
    distances: str = "float32"


def check_distances(distances: str) -> None:
    """Raise ValueError unless ``distances`` is one of :data:`DISTANCES`."""
    if distances not in DISTANCES:
        raise ValueError(f"distances must be one of {', '.join(DISTANCES)}, got {distances!r}")


def _round_to_float16_(x: torch.Tensor) -> torch.Tensor:
    """Round a float32 tensor in place to the nearest float16 values (overflow becomes inf)."""
    return x.copy_(x.to(torch.float16))


def _float16_matmul(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``u @ v.T`` as a float16 matmul with a float32 accumulator returns it (correctly rounded)."""
    return _round_to_float16_((u.to(torch.float64) @ v.to(torch.float64).T).to(torch.float32))


def _tensorflow_float16_row_sum(x: torch.Tensor) -> torch.Tensor:
    """``tf.reduce_sum(x, axis=1)`` of float16 values as TensorFlow's GPU kernel adds them.

    TensorFlow sums float16 in float16 (``Sum<Eigen::half>``) and splits a row between threads
    (tensorflow/core/kernels/reduction_gpu_kernels.cu.h, ``LaunchRowReduction``): rows of 1024 or
    more go to ``cub::DeviceSegmentedReduce``, one 256-thread block per row, which reads a row
    shorter than its tile (256 x at least 16 items) block-striped, thread t adding items t,
    t + 256, ... in order (NVIDIA/cub agent/agent_reduce.cuh, partial-tile ``ConsumeTile``);
    shorter rows go to one warp per row, lane l adding items l, l + 32, ... Each warp then
    combines its lanes by a shuffle tree (offsets 1, 2, 4, 8, 16) and the warps' results are added
    in order (cub block/specializations/block_reduce_warp_reductions.cuh). Every addition is
    rounded to float16. Rows longer than 4096 (not ADM's 2048-d features) may fill a whole tile,
    which CUB reads in another order; the same striped order is used for them here.
    """
    n, d = x.shape
    threads = 256 if d >= 1024 else 32
    steps = -(-d // threads)
    padded = x.new_zeros(n, steps * threads)
    padded[:, :d] = x
    stripes = padded.view(n, steps, threads)
    partial = stripes[:, 0].clone()
    for step in range(1, steps):
        valid = min(d - step * threads, threads)
        _round_to_float16_(partial[:, :valid].add_(stripes[:, step, :valid]))
    lanes = partial.view(n, threads // 32, 32)
    valid_lanes = min(d, 32)
    offset = 1
    while offset < 32:
        # lane i adds lane i + offset where that lane holds data; lane 0 ends with the warp's sum
        summed = lanes[..., : valid_lanes - offset] + lanes[..., offset:valid_lanes]
        lanes[..., : valid_lanes - offset] = _round_to_float16_(summed)
        offset *= 2
    total = lanes[:, 0, 0].clone()
    for warp in range(1, threads // 32):
        _round_to_float16_(total.add_(lanes[:, warp, 0]))
    return total


def _adm_float16_distances(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """One ``DistanceBlock`` in emulated float16 arithmetic; float16 values held in float32.

    A float32 operation on float16 inputs followed by rounding to float16 gives the correctly
    rounded float16 result (float32 carries 24 >= 2 x 11 + 2 bits), so every elementwise step
    below is exactly the float16 operation TensorFlow runs.
    """
    u = rows.to(torch.float32).to(torch.float16).to(torch.float32)  # ADM feeds float32, casts
    v = cols.to(torch.float32).to(torch.float16).to(torch.float32)
    norm_u = _tensorflow_float16_row_sum(_round_to_float16_(u * u))  # reduce_sum(square(U))
    norm_v = _tensorflow_float16_row_sum(_round_to_float16_(v * v))
    block = _float16_matmul(u, v)
    _round_to_float16_(block.mul_(-2))  # 2 * matmul: exact, or inf on overflow
    _round_to_float16_(block.add_(norm_u[:, None]))  # norm_u - 2 * matmul
    _round_to_float16_(block.add_(norm_v[None, :]))  # ... + norm_v
    block.clamp_(min=0)
    if not torch.isfinite(block).all():
        # ADM's tf.cond: a block with an inf or nan is recomputed in float32
        return _plain_distances(rows.to(torch.float32), cols.to(torch.float32))
    return block


def _plain_distances(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    sq = rows.square().sum(1, keepdim=True) - 2 * rows @ cols.T + cols.square().sum(1)
    return sq.clamp_(min=0)


def pairwise_distances(rows: torch.Tensor, cols: torch.Tensor, distances: str) -> torch.Tensor:
    """Squared distances between every row of ``rows`` and of ``cols`` (``len(rows) x len(cols)``).

    ``"adm-float16"``: ADM's ``DistanceBlock`` arithmetic, float16 values returned as float32
    (note that it is not symmetric: the rows play ADM's ``U``, the columns its ``V``);
    ``"float32"``/``"float64"``: ``|u|^2 - 2 u.v + |v|^2`` in that dtype, clamped at 0.
    """
    check_distances(distances)
    if distances == "adm-float16":
        return _adm_float16_distances(rows, cols)
    dtype = torch.float32 if distances == "float32" else torch.float64
    return _plain_distances(rows.to(dtype), cols.to(dtype))


def manifold_radii(
    features: torch.Tensor, k: int = 3, batch_size: int = 10000, distances: str = "float32"
) -> torch.Tensor:
    """Squared distance from each row to its k-th nearest other row (the row itself excluded).

    Works block by block (``batch_size`` x ``batch_size`` distances at a time, ADM's blocks at
    the default 10000), keeping a running k+1 smallest per row, so memory stays bounded for
    50k x 50k on one GPU. The value is that of ADM's ``np.partition`` of the whole row.
    """
    check_distances(distances)
    n = features.shape[0]
    if n <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} samples, got {n}")
    radii = []
    for rows in features.split(batch_size):
        nearest = None
        for cols in features.split(batch_size):
            block = pairwise_distances(rows, cols, distances)
            candidates = block if nearest is None else torch.cat([nearest, block], dim=1)
            nearest = candidates.topk(min(k + 1, candidates.shape[1]), dim=1, largest=False).values
        # Column 0 is the row's distance to itself; column k is the k-th neighbour.
        radii.append(nearest[:, k])
    return torch.cat(radii)


def _within_radii(
    real: torch.Tensor,
    fake: torch.Tensor,
    real_radii: torch.Tensor,
    fake_radii: torch.Tensor,
    batch_size: int,
    distances: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ADM's ``evaluate_pr``: (real rows inside some fake ball, fake rows inside some real ball)."""
    real_inside = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    fake_inside = torch.zeros(fake.shape[0], dtype=torch.bool, device=real.device)
    for i, rows in enumerate(real.split(batch_size)):
        row_slice = slice(i * batch_size, i * batch_size + rows.shape[0])
        for j, cols in enumerate(fake.split(batch_size)):
            col_slice = slice(j * batch_size, j * batch_size + cols.shape[0])
            block = pairwise_distances(rows, cols, distances)  # reference rows, as ADM's U
            real_inside[row_slice] |= (block <= fake_radii[col_slice][None, :]).any(1)
            fake_inside[col_slice] |= (block <= real_radii[row_slice][:, None]).any(0)
    return real_inside, fake_inside


def precision_recall(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    k: int = 3,
    batch_size: int = 10000,
    distances: str = "float32",
) -> PrecisionRecall:
    """Improved precision/recall with ADM's semantics (its ``ManifoldEstimator``, k = 3).

    Each sample's radius is the distance to its k-th nearest neighbour in its own set. Precision
    is the fraction of ``fake`` rows within the radius of at least one ``real`` row; recall is the
    fraction of ``real`` rows within the radius of at least one ``fake`` row. ``distances``
    chooses the arithmetic: ``"adm-float16"`` is ADM's evaluator's (protocol ``gfid-adm`` uses
    it), ``"float32"`` (default here) and ``"float64"`` compute plainly in that dtype. Distances
    are computed in ``batch_size`` blocks (ADM's are 10000) on the features' device.
    """
    check_distances(distances)
    check_features(real, "real", min_rows=k + 1)
    check_features(fake, "fake", min_rows=k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real and fake features differ in width: {real.shape[1]} vs {fake.shape[1]}"
        )
    fake = fake.to(real.device)
    real_radii = manifold_radii(real, k, batch_size, distances)
    fake_radii = manifold_radii(fake, k, batch_size, distances)
    real_inside, fake_inside = _within_radii(
        real, fake, real_radii, fake_radii, batch_size, distances
    )
    return PrecisionRecall(
        float(fake_inside.double().mean()), float(real_inside.double().mean()), k, distances
    )

"""One cell of the generation table: draw the samples of a (generator, sampler setting) over
every rank, then measure them against the reference batch.

Drawing: each rank takes its share of the shards that are not written yet (shard ``k`` of the
pending list goes to rank ``k mod world_size``), samples them batch by batch and writes each
shard atomically (:class:`~freqlat.eval.sample_store.SampleStore`); rank 0 then assembles the
ADM ``samples.npz``. Measuring: rank ``r`` reads the contiguous block of samples
``[N r / W, N (r + 1) / W)`` from that file, so the Inception features gathered in rank order
are in sample order (the ADM Inception Score splits the samples into consecutive chunks of
5,000) and every number equals the single-process one up to float summation order.

The ranks wait for each other in a gloo group with a long timeout: a rank whose shards take
longer than the others' must not trip the default collective timeout of the main group.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from freqlat.core import DistributedContext, progress
from freqlat.eval.generator_specs import LoadedGenerator
from freqlat.eval.reference_batch import PROTOCOL, ReferenceBatch
from freqlat.eval.sample_store import SampleStore
from freqlat.eval.sampling import generate_images, sample_labels, to_uint8_images
from freqlat.metrics import (
    InceptionFeatures,
    InceptionMetrics,
    RadialSpectrum,
    frechet_distance,
    high_frequency_ratio,
    inception_score,
    precision_recall,
)

logger = logging.getLogger("freqlat.eval")

INCEPTION_COLUMNS = ("FID", "sFID", "IS", "Precision", "Recall")
"""The columns measured with the Inception network (protocol ``gfid-adm``)."""

WAIT_TIMEOUT = timedelta(days=7)
"""How long a rank waits for the others between stages (sampling can take hours)."""


class RankSync:
    """Barriers between the stages, through a gloo group with :data:`WAIT_TIMEOUT`."""

    def __init__(self, ctx: DistributedContext) -> None:
        self.group = None
        if ctx.world_size > 1:
            self.group = dist.new_group(backend="gloo", timeout=WAIT_TIMEOUT)

    def wait(self) -> None:
        """Wait until every rank gets here (a no-op in a single process)."""
        if self.group is not None:
            dist.barrier(group=self.group)


def draw_samples(
    loaded: LoadedGenerator,
    store: SampleStore,
    sampler: dict[str, Any],
    *,
    labels: str,
    quantization: str,
    seed: int,
    batch_size: int,
    ctx: DistributedContext,
    sync: RankSync,
) -> None:
    """Write every sample of ``store`` that is not on disk yet, then assemble ``samples.npz``.

    ``loaded`` must be on ``ctx.device``; ``labels`` and ``quantization`` are resolved rules
    (``uniform``/``balanced``, ``adm``/``lightningdit``).
    """
    if ctx.is_main:
        store.open()
    sync.wait()
    pending = store.pending_shards()
    sync.wait()  # nobody writes a shard before every rank has listed the pending ones
    mine = pending[ctx.rank :: ctx.world_size]
    if pending:
        logger.info(
            "%s: %d of %d shards to sample (%d on this rank)",
            store.directory,
            len(pending),
            store.num_shards,
            len(mine),
        )
    for shard in progress(mine, desc=f"sampling {loaded.name}", unit="shard"):
        start, stop = store.shard_range(shard)
        images, shard_labels = [], []
        for begin in range(start, stop, batch_size):
            indices = range(begin, min(begin + batch_size, stop))
            y = sample_labels(indices, seed, loaded.num_classes, labels)
            decoded = generate_images(loaded, indices, y, sampler, seed, ctx.device)
            as_uint8 = to_uint8_images(decoded, quantization)
            images.append(as_uint8.permute(0, 2, 3, 1).cpu().numpy())
            shard_labels.append(y.numpy())
        store.write_shard(shard, np.concatenate(images), np.concatenate(shard_labels))
    sync.wait()
    if ctx.is_main:
        store.assemble()
    sync.wait()


def measure_samples(
    store: SampleStore,
    extractor: InceptionFeatures | None,
    reference: ReferenceBatch | None,
    *,
    batch_size: int,
    ctx: DistributedContext,
    write_png: bool = False,
) -> tuple[dict[str, Any], dict[str, str], RadialSpectrum]:
    """(values, missing reasons, spectrum) of the assembled samples; every rank reads its block,
    the values are only complete on rank 0. ``write_png`` also writes each sample as a PNG."""
    n = store.num_samples
    start, stop = n * ctx.rank // ctx.world_size, n * (ctx.rank + 1) // ctx.world_size
    inception = None
    if extractor is not None:
        inception = InceptionMetrics(extractor, PROTOCOL, keep_features=True, device=ctx.device)
    spectrum = RadialSpectrum(ctx.device)
    for begin in range(start, stop, batch_size):
        images, _ = store.read(begin, min(begin + batch_size, stop))
        if write_png:
            store.write_pngs(begin, images)
        batch = torch.from_numpy(images).permute(0, 3, 1, 2)
        spectrum.update(batch)
        if inception is not None:
            inception.update(batch)
    spectrum.all_reduce()
    values: dict[str, Any] = dict.fromkeys((*INCEPTION_COLUMNS, "HF ratio"))
    missing: dict[str, str] = {}
    if inception is not None:
        inception.all_reduce()
        if ctx.is_main:
            _inception_values(inception, reference, values, missing)
    if ctx.is_main:
        _spectral_value(spectrum, reference, values, missing)
    return values, missing, spectrum


def _inception_values(
    inception: InceptionMetrics,
    reference: ReferenceBatch | None,
    values: dict[str, Any],
    missing: dict[str, str],
) -> None:
    count = inception.count
    logits = inception.logit_bank.compute()
    values["IS"] = inception_score(logits, inception.protocol.inception_score_mode).mean
    if reference is None:
        for column in ("FID", "sFID", "Precision", "Recall"):
            missing[column] = "no --reference batch was given"
        return
    missing.update({k: v for k, v in reference.missing.items() if k in INCEPTION_COLUMNS})
    statistics = reference.statistics
    if statistics is not None and count >= 2:
        ours = inception.statistics()
        values["FID"] = frechet_distance(ours.mu, ours.sigma, statistics.mu, statistics.sigma)
        if statistics.mu_s is not None and statistics.sigma_s is not None:
            values["sFID"] = frechet_distance(
                ours.mu_s, ours.sigma_s, statistics.mu_s, statistics.sigma_s
            )
    elif count < 2:
        missing["FID"] = missing["sFID"] = f"FID needs at least 2 samples, got {count}"
    if reference.pool is not None:
        if min(count, len(reference.pool)) > 3:
            result = precision_recall(
                reference.pool.to(logits.device),
                inception.pool_bank.compute(),
                distances=inception.precision_recall_distances,
            )
            values["Precision"], values["Recall"] = result.precision, result.recall
        else:
            reason = (
                f"k = 3 neighbours need 4 samples a side, got {count} and {len(reference.pool)}"
            )
            missing["Precision"] = missing["Recall"] = reason


def _spectral_value(
    spectrum: RadialSpectrum,
    reference: ReferenceBatch | None,
    values: dict[str, Any],
    missing: dict[str, str],
) -> None:
    if reference is None:
        missing["HF ratio"] = "no --reference batch was given"
    elif reference.spectrum is None:
        missing["HF ratio"] = reference.missing["HF ratio"]
    else:
        try:
            values["HF ratio"] = high_frequency_ratio(spectrum, reference.spectrum)
        except ValueError as exc:
            missing["HF ratio"] = str(exc)

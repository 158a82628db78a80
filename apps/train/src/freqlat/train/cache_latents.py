"""``freqlat-train cache-latents``: encode every training image, as it is and mirrored, into shards.

The cache layout and its reader are :mod:`freqlat.generators.latent_cache`'s. Process r of a
world of W encodes shards r, r + W, ...; a shard already on disk (written atomically, so
complete) is checked against this tokenizer's weights and skipped, so a killed or requeued job
resumes where it stopped. Image i's posterior sample is drawn from its own generator seeded by
``posterior_seed(seed, i, flip)``, so the cache does not depend on the batch size, the number of
processes or the interruptions. When every shard is written, rank 0 measures the statistics on
``stats_samples`` seeded, un-flipped latents (hustvl/LightningDiT
``datasets/img_latent_dataset.py`` draws 10,000) and writes ``latent_stats.json``,
``latent_space.json`` and, last, ``manifest.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from freqlat.core import (
    DistributedContext,
    PreemptionGuard,
    autocast,
    barrier,
    open_dataset,
    progress,
    setup_logging,
)
from freqlat.generators import LatentSpace
from freqlat.generators.latent_cache import (
    LABELS,
    LATENTS,
    MANIFEST_NAME,
    SHARD_DIR,
    STATS_NAME,
    TOKENS,
    CacheManifest,
    posterior_seed,
    read_shard_metadata,
    shard_name,
    shard_ranges,
    weights_sha256,
    write_json,
    write_shard,
)
from freqlat.tokenizers import Tokenizer, load_tokenizer
from freqlat.train.cache_config import EMBEDDED, CacheLatentsConfig

logger = logging.getLogger("freqlat.train")


class SourcePhotoLabels(Dataset):
    """The embedded crops labelled by the photograph each was cut from (classes: the sources)."""

    def __init__(self, photos: Any) -> None:
        self.photos = photos
        self.classes = list(photos.sources)
        self.labels = [self.classes.index(box.source) for box in photos.boxes]

    @property
    def num_classes(self) -> int:
        """How many source photographs the split has."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.photos[index][0], self.labels[index]


def open_images(config: CacheLatentsConfig) -> Dataset:
    """The training images the config names (ADM crop by default), labelled."""
    dataset = open_dataset(
        config.data,
        "train",
        config.image_size,
        skip_bad_images=config.skip_bad_images,
        crop=config.crop,
    )
    return SourcePhotoLabels(dataset) if config.source_labels else dataset


def has_tokens(tokenizer: Tokenizer) -> bool:
    """True for tokenizers with per-scale token maps (multi-scale VQ)."""
    return callable(getattr(tokenizer, "encode_indices", None))


@torch.no_grad()
def encode_images(
    tokenizer: Tokenizer,
    images: Tensor,
    indices: Tensor,
    flip: bool,
    config: CacheLatentsConfig,
) -> dict[str, Tensor]:
    """The latents (and token maps) of a batch of images with dataset indices ``indices``.

    Keys ``latents`` and ``tokens``; ``flip`` mirrors the images first (the shard stores the
    results under ``latents_flip`` and ``tokens_flip``); posterior samples use one CPU generator per image,
    seeded by :func:`posterior_seed`, so they do not depend on the batch.
    """
    x = images.flip(-1) if flip else images
    generators = None
    if config.sample:
        generators = [
            torch.Generator().manual_seed(posterior_seed(config.seed, int(i), flip))
            for i in indices
        ]
    with autocast(config.precision, x.device):
        latents = tokenizer.encode_latent(x, sample=config.sample, generator=generators)
        out = {LATENTS: latents.float().cpu()}
        if has_tokens(tokenizer):
            maps = tokenizer.encode_indices(x)
            out[TOKENS] = torch.cat([m.reshape(x.shape[0], -1) for m in maps], 1).int().cpu()
    return out


def encode_shard(
    tokenizer: Tokenizer,
    images: Dataset,
    start: int,
    stop: int,
    config: CacheLatentsConfig,
    device: torch.device,
) -> dict[str, Tensor]:
    """Every tensor of the shard of images [start, stop)."""
    loader = DataLoader(
        Subset(images, range(start, stop)),
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
    )
    parts: dict[str, list[Tensor]] = {}
    offset = start
    for batch, labels in loader:
        batch = batch.to(device, non_blocking=True)
        indices = torch.arange(offset, offset + batch.shape[0])
        offset += batch.shape[0]
        for flip, suffix in ((False, ""), (True, "_flip")):
            for name, value in encode_images(tokenizer, batch, indices, flip, config).items():
                parts.setdefault(name + suffix, []).append(value)
        parts.setdefault(LABELS, []).append(labels.long())
    return {name: torch.cat(values) for name, values in parts.items()}


def check_existing_shard(path: Path, start: int, stop: int, fingerprint: str) -> None:
    """Raise ValueError unless the shard at ``path`` covers [start, stop) with these weights."""
    meta = read_shard_metadata(path)
    if meta.get("tokenizer_sha256") != fingerprint:
        raise ValueError(
            f"{path} was encoded by tokenizer weights with sha256 "
            f"{meta.get('tokenizer_sha256')}, not by this tokenizer's {fingerprint}; "
            "cache into a new --out"
        )
    if (meta.get("start"), meta.get("stop")) != (str(start), str(stop)):
        raise ValueError(
            f"{path} holds images [{meta.get('start')}, {meta.get('stop')}), expected "
            f"[{start}, {stop}); cache into a new --out"
        )


def latent_statistics(
    tokenizer: Tokenizer, out: Path, ranges: list[tuple[int, int]], config: CacheLatentsConfig
) -> tuple[Any, int]:
    """The statistics of ``stats_samples`` seeded, un-flipped cached latents, and their count."""
    count = ranges[-1][1]
    samples = min(config.stats_samples, count)
    rng = np.random.default_rng(config.seed)
    chosen = np.sort(rng.choice(count, size=samples, replace=False))
    stats = tokenizer.new_latent_statistics()
    shard_size = config.shard_size
    for shard in np.unique(chosen // shard_size):
        rows = chosen[chosen // shard_size == shard] - shard * shard_size
        with safe_open(str(out / SHARD_DIR / shard_name(int(shard))), framework="pt") as handle:
            latents = handle.get_slice(LATENTS)  # read row by row, not the whole shard
            stats.update(torch.cat([latents[int(row) : int(row) + 1] for row in rows]))
    return stats, samples


def cache_latents(
    config: CacheLatentsConfig, ctx: DistributedContext, guard: PreemptionGuard | None = None
) -> dict[str, Any]:
    """Write (or finish) the cache of ``config``; returns a summary dict.

    With a ``guard`` inside a submitit job, a timeout/preemption signal makes every process
    stop after its current shard and the job requeue; the next start skips the written shards.
    """
    out = Path(config.out)
    setup_logging(out / "cache.log")
    if (out / MANIFEST_NAME).is_file():
        manifest = CacheManifest.from_dict(json.loads((out / MANIFEST_NAME).read_text()))
        logger.info("%s is a finished cache of %d images", out, manifest.count)
        return {"out": str(out), "count": manifest.count, "encoded_shards": 0}
    loaded = load_tokenizer(config.tokenizer)
    tokenizer = loaded.model.to(ctx.device).eval()
    fingerprint = weights_sha256(tokenizer)
    images = open_images(config)
    count = len(images) if config.max_images is None else min(len(images), config.max_images)
    ranges = shard_ranges(count, config.shard_size)
    logger.info(
        "caching %d images of %s with %s (%s, weights sha256 %s) into %d shards, %d process(es)",
        count, config.data, loaded.name, loaded.source, fingerprint[:16], len(ranges),
        ctx.world_size,
    )  # fmt: skip
    # Every process checks every finished shard, so that a foreign one stops them all at once.
    written = 0
    for shard, (start, stop) in enumerate(ranges):
        path = out / SHARD_DIR / shard_name(shard)
        if path.is_file():
            check_existing_shard(path, start, stop, fingerprint)
            written += 1
    if written:
        logger.info("%d of %d shards already written: resuming", written, len(ranges))
    rounds = -(-len(ranges) // ctx.world_size)
    encoded = 0
    for round_index in progress(range(rounds), desc="shards"):
        if guard is not None and guard.should_stop(ctx.device):
            logger.info("stopping after %d new shard(s) to requeue", encoded)
            guard.requeue()
        shard = round_index * ctx.world_size + ctx.rank
        if shard >= len(ranges):
            continue
        start, stop = ranges[shard]
        path = out / SHARD_DIR / shard_name(shard)
        if path.is_file():
            continue
        tensors = encode_shard(tokenizer, images, start, stop, config, ctx.device)
        meta = {"start": str(start), "stop": str(stop), "tokenizer_sha256": fingerprint}
        write_shard(path, tensors, meta)
        encoded += 1
        logger.info("wrote %s (images %d to %d)", path, start, stop)
    barrier()
    if ctx.is_main:
        finish_cache(config, loaded, tokenizer, fingerprint, images, ranges)
    barrier()
    return {"out": str(out), "count": count, "encoded_shards": encoded}


def finish_cache(
    config: CacheLatentsConfig,
    loaded: Any,
    tokenizer: Tokenizer,
    fingerprint: str,
    images: Dataset,
    ranges: list[tuple[int, int]],
) -> CacheManifest:
    """Rank 0, once every shard is written: statistics, latent space, then the manifest."""
    out = Path(config.out)
    stats, samples = latent_statistics(tokenizer, out, ranges, config)
    write_json(out / STATS_NAME, stats.to_dict())
    latent_shape = tokenizer.latent_shape(config.image_size)
    how = "posterior samples" if config.sample else "posterior modes"
    space = LatentSpace.from_statistics(
        config.tokenizer,
        latent_shape,
        stats,
        normalization=config.normalization,
        source=f"{samples} un-flipped latents ({how}) of {ranges[-1][1]} cached images of "
        f"{config.data}",
    )
    space.save(out)
    quantizer = getattr(tokenizer, "quantize", None)
    tokens = has_tokens(tokenizer)
    manifest = CacheManifest(
        tokenizer=config.tokenizer,
        tokenizer_sha256=fingerprint,
        data=config.data if config.data == EMBEDDED else str(Path(config.data).resolve()),
        image_size=config.image_size,
        crop=config.crop,
        count=ranges[-1][1],
        num_classes=int(getattr(images, "num_classes", 1)),
        latent_shape=tuple(latent_shape),
        sample=config.sample,
        seed=config.seed,
        shard_size=config.shard_size,
        shards=tuple(
            (f"{SHARD_DIR}/{shard_name(i)}", start, stop) for i, (start, stop) in enumerate(ranges)
        ),
        statistics_samples=samples,
        classes=tuple(getattr(images, "classes", ())),
        labels="photograph" if config.source_labels else "dataset",
        patch_sizes=tuple(quantizer.patch_sizes) if tokens else None,
        vocab_size=int(quantizer.vocab_size) if tokens else None,
    )
    write_json(out / MANIFEST_NAME, manifest.to_dict())
    logger.info(
        "cache finished: %s (%s of %s)", out / MANIFEST_NAME, space.normalization, loaded.name
    )
    return manifest

"""The latent cache format: shards, manifest, the dataset's (index, flip) keys, fingerprints."""

import json

import pytest
import torch
from torch import nn

from freqlat.generators import (
    CacheManifest,
    LatentCache,
    LatentDataset,
    LatentSpace,
    posterior_seed,
    split_tokens,
    weights_sha256,
)
from freqlat.generators.latent_cache import (
    MANIFEST_NAME,
    STATS_NAME,
    read_shard_metadata,
    shard_name,
    shard_ranges,
    write_json,
    write_shard,
)
from freqlat.tokenizers import LatentStatistics

PATCH_SIZES = (1, 2)


def _write_cache(directory, count=5, shard_size=2, tokens=True):
    """A hand-made cache: image i's latent is full of i, its mirror's of -i; label i % 3."""
    shards = []
    for index, (start, stop) in enumerate(shard_ranges(count, shard_size)):
        ids = torch.arange(start, stop, dtype=torch.float32).view(-1, 1, 1, 1)
        tensors = {
            "latents": ids.expand(-1, 2, 2, 2).clone(),
            "latents_flip": -ids.expand(-1, 2, 2, 2).clone(),
            "labels": torch.arange(start, stop) % 3,
        }
        if tokens:
            tensors["tokens"] = (
                torch.arange(start, stop, dtype=torch.int32).view(-1, 1).repeat(1, 5)
            )
            tensors["tokens_flip"] = tensors["tokens"] + 100
        name = f"shards/{shard_name(index)}"
        write_shard(directory / name, tensors, {"start": str(start), "stop": str(stop)})
        shards.append((name, start, stop))
    stats = LatentStatistics(2)
    stats.update(torch.randn(4, 2, 2, 2))
    write_json(directory / STATS_NAME, stats.to_dict())
    LatentSpace.from_statistics("random:x", (2, 2, 2), stats).save(directory)
    manifest = CacheManifest(
        tokenizer="random:x",
        tokenizer_sha256="0" * 64,
        data="embedded",
        image_size=32,
        crop="adm",
        count=count,
        num_classes=3,
        latent_shape=(2, 2, 2),
        sample=True,
        seed=0,
        shard_size=shard_size,
        shards=tuple(shards),
        statistics_samples=4,
        patch_sizes=PATCH_SIZES if tokens else None,
        vocab_size=8 if tokens else None,
    )
    write_json(directory / MANIFEST_NAME, manifest.to_dict())
    return directory


def test_dataset_keys_pick_image_and_flip_across_shards(tmp_path):
    dataset = LatentDataset(_write_cache(tmp_path))
    assert len(dataset) == 5
    for index in range(5):
        latent, label = dataset[index]
        assert latent.shape == (2, 2, 2) and latent.dtype == torch.float32
        assert torch.equal(latent, torch.full((2, 2, 2), float(index))) and label == index % 3
        assert torch.equal(dataset[(index, True)][0], torch.full((2, 2, 2), -float(index)))
        assert torch.equal(dataset[(index, False)][0], latent)
    with pytest.raises(IndexError):
        dataset[5]


def test_token_items_are_int64_maps_and_split_by_scale(tmp_path):
    dataset = LatentDataset(_write_cache(tmp_path), tokens=True)
    tokens, label = dataset[(3, True)]
    assert tokens.dtype == torch.int64 and tokens.tolist() == [103] * 5 and label == 0
    maps = split_tokens(torch.stack([dataset[i][0] for i in range(2)]), PATCH_SIZES)
    assert [m.shape for m in maps] == [(2, 1, 1), (2, 2, 2)]
    assert maps[1][1].flatten().tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="expected 5 tokens"):
        split_tokens(torch.zeros(1, 4, dtype=torch.long), PATCH_SIZES)


def test_a_cache_without_tokens_refuses_token_items(tmp_path):
    with pytest.raises(ValueError, match="holds no token maps"):
        LatentDataset(_write_cache(tmp_path, tokens=False), tokens=True)


def test_dataset_survives_pickling_after_use(tmp_path):
    import pickle

    dataset = LatentDataset(_write_cache(tmp_path))
    dataset[4]  # opens a shard
    copy = pickle.loads(pickle.dumps(dataset))
    assert torch.equal(copy[(4, True)][0], dataset[(4, True)][0])


def test_unfinished_or_foreign_directories_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished latent cache"):
        LatentCache(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="is not a freqlat-latent-cache manifest"):
        LatentCache(tmp_path)


def test_cache_reads_its_manifest_space_and_statistics(tmp_path):
    cache = LatentCache(_write_cache(tmp_path, count=5, shard_size=2))
    assert cache.manifest.has_tokens and cache.manifest.shards[-1] == (
        "shards/shard_000002.safetensors",
        4,
        5,
    )
    assert cache.locate(3) == (1, 1)
    assert cache.latent_space == LatentSpace.load(tmp_path)
    assert cache.statistics().count == 4 * 2 * 2


def test_shards_are_written_atomically_with_their_metadata(tmp_path):
    path = write_shard(tmp_path / "s" / "a.safetensors", {"x": torch.ones(2)}, {"start": "7"})
    assert read_shard_metadata(path) == {"start": "7"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.safetensors"]
    assert shard_ranges(5, 2) == [(0, 2), (2, 4), (4, 5)]
    with pytest.raises(ValueError):
        shard_ranges(0, 2)


def test_posterior_seeds_are_a_pure_function_of_seed_index_and_flip():
    seeds = {posterior_seed(s, i, f) for s in (0, 1) for i in range(50) for f in (False, True)}
    assert len(seeds) == 200
    assert posterior_seed(3, 17, True) == posterior_seed(3, 17, True)


def test_weights_fingerprint_follows_every_value():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    before = weights_sha256(model)
    assert weights_sha256(model) == before and len(before) == 64
    with torch.no_grad():
        model[1].running_mean[0] += 1e-7
    assert weights_sha256(model) != before
    half = nn.Linear(3, 2).to(torch.bfloat16)
    assert len(weights_sha256(half)) == 64

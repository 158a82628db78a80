"""freqlat-train cache-latents: shards equal to direct encoding, flips, statistics, tokens, resume."""

import json
import os
import shutil
import signal
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from freqlat.core import CROPS, EmbeddedPhotos, init_distributed, open_dataset
from freqlat.generators import LatentCache, LatentDataset, posterior_seed, weights_sha256
from freqlat.generators.latent_space import NORMALIZATIONS
from freqlat.tokenizers import load_tokenizer
from freqlat.train.cache_config import (
    CROP_NAMES,
    NORMALIZATION_NAMES,
    CacheLatentsConfig,
    resolve_cache_config,
)
from freqlat.train.cache_latents import cache_latents
from freqlat.train.cli import main, parse_overrides

TOKENIZER = "random:kl-vae-f16d16-tiny"


def _shards(directory):
    """Every tensor of a cache's shards, concatenated in image order."""
    parts = [load_file(str(path)) for path in sorted((directory / "shards").glob("shard_*"))]
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def _encode(model, images, indices, flip):
    """Direct encoding of images ``indices`` (mirrored with ``flip``) in one batch, as cached."""
    x = torch.stack([images[(i, flip)][0] for i in indices])
    generators = [torch.Generator().manual_seed(posterior_seed(0, i, flip)) for i in indices]
    with torch.no_grad():
        return model.encode_latent(x, sample=True, generator=generators)


def test_shards_hold_the_direct_encoding_of_every_image_and_of_its_mirror(latent_cache, one_thread):
    model = load_tokenizer(TOKENIZER).model
    images = open_dataset("embedded", "train", 32)
    cached = _shards(latent_cache)
    assert cached["latents"].shape == (48, 16, 2, 2) and cached["labels"].tolist() == [0] * 48
    for start in range(0, 48, 8):  # the cache encodes batches of 8
        batch = range(start, start + 8)
        assert torch.equal(
            cached["latents"][start : start + 8], _encode(model, images, batch, False)
        )
        # the mirror image as the data pipeline flips it, with its own posterior draw
        flipped = _encode(model, images, batch, True)
        assert torch.equal(cached["latents_flip"][start : start + 8], flipped)
    alone = _encode(model, images, [21], True)  # batching changes nothing beyond rounding
    torch.testing.assert_close(cached["latents_flip"][21:22], alone, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(cached["latents"], cached["latents_flip"])


def test_manifest_names_the_tokenizer_weights_and_statistics_cover_unflipped_latents(latent_cache):
    cache = LatentCache(latent_cache)
    manifest = cache.manifest
    assert manifest.tokenizer == TOKENIZER and manifest.count == 48 and manifest.sample
    assert manifest.tokenizer_sha256 == weights_sha256(load_tokenizer(TOKENIZER).model)
    assert (manifest.image_size, manifest.crop, manifest.latent_shape) == (32, "adm", (16, 2, 2))
    assert [s[1:] for s in manifest.shards] == [(0, 16), (16, 32), (32, 48)]
    assert not manifest.has_tokens and manifest.num_classes == 1
    # 10,000 samples asked, 48 there: the statistics are those of every un-flipped latent
    latents = _shards(latent_cache)["latents"].double()
    space = cache.latent_space
    assert space.normalization == "channel" and space.tokenizer == TOKENIZER
    # (float64 moments, stored in float32 as upstream's latents_stats.pt)
    np.testing.assert_allclose(space.mean, latents.mean(dim=(0, 2, 3)), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(space.std, latents.std(dim=(0, 2, 3), correction=0), rtol=1e-7)
    assert cache.statistics().count == 48 * 2 * 2
    assert "48 un-flipped latents (posterior samples)" in space.source


def test_statistics_come_from_a_seeded_sample_and_the_normalisation_is_a_choice(
    tmp_path, cache_args, one_thread
):
    out = tmp_path / "cache"
    extra = {"max_images": 20, "stats_samples": 7, "seed": 3, "normalization": "global"}
    assert main(cache_args(out, **extra)) == 0
    chosen = np.sort(np.random.default_rng(3).choice(20, size=7, replace=False))
    latents = _shards(out)["latents"][torch.from_numpy(chosen)].double()
    stats = LatentCache(out).statistics()
    np.testing.assert_allclose(stats.channel_mean, latents.mean(dim=(0, 2, 3)), rtol=1e-6)
    space = LatentCache(out).latent_space
    assert space.normalization == "global" and set(space.mean) == {0.0}
    assert space.std[0] == pytest.approx(1 / stats.group_scale("all"))


def test_token_cache_holds_every_scales_indices_of_image_and_mirror(token_cache, one_thread):
    model = load_tokenizer("random:ms-vq-vae-tiny").model
    images = EmbeddedPhotos("train", 64)
    cached = _shards(token_cache)
    manifest = LatentCache(token_cache).manifest
    assert manifest.patch_sizes == (1, 2, 3, 4) and manifest.vocab_size == 256
    assert cached["tokens"].shape == (16, 30) and cached["tokens"].dtype == torch.int32
    for flip, name in ((False, "tokens"), (True, "tokens_flip")):
        for start in (0, 8):  # the cache encodes batches of 8
            x = torch.stack([images[(i, flip)][0] for i in range(start, start + 8)])
            with torch.no_grad():
                maps = model.encode_indices(x)
                latent = model.encode_latent(x, sample=False)
            rows = slice(start, start + 8)
            assert torch.equal(
                cached[name][rows].long(), torch.cat([m.flatten(1) for m in maps], 1)
            )
            assert torch.equal(cached[name.replace("tokens", "latents")][rows], latent)
    tokens, label = LatentDataset(token_cache, tokens=True)[(5, True)]
    assert torch.equal(tokens, cached["tokens_flip"][5].long())
    # labelled by source photograph
    sources = [images.sources.index(box.source) for box in images.boxes[:16]]
    assert cached["labels"].tolist() == sources and label == sources[5]
    assert list(manifest.classes) == images.sources and manifest.labels == "photograph"


def test_killed_cache_resumes_without_encoding_its_finished_shards_again(
    tmp_path, cache_args, latent_cache, run_subprocess, single_thread_env, one_thread
):
    out = tmp_path / "cache"
    # every crop (165) in shards of 8: 21 shards, batches aligned with the reference cache's
    args = cache_args(out, max_images="none", shard_size=8)
    process = run_subprocess(args, single_thread_env, tmp_path / "logs")
    deadline = time.monotonic() + 240
    while not list((out / "shards").glob("shard_*")) and time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "logs" / "out.txt").read_text()[-3000:]
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.name: os.stat(p) for p in (out / "shards").glob("shard_*")}
    assert finished and not (out / "manifest.json").exists()
    assert len(finished) < 21, "the cache finished before it could be killed"

    assert main(args) == 0
    for name, before in finished.items():
        after = os.stat(out / "shards" / name)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), name
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        f"shard_{i:06d}.safetensors" for i in range(21)
    ]
    assert f"{len(finished)} of 21 shards already written" in (out / "cache.log").read_text()
    ours, reference = _shards(out), _shards(latent_cache)
    for key in ("latents", "latents_flip"):
        assert torch.equal(ours[key][:48], reference[key]), key
    assert LatentCache(out).manifest.count == 165


def test_a_stop_request_ends_the_job_after_its_shard_and_the_next_start_finishes(
    tmp_path, cache_args, latent_cache, one_thread
):
    class Stop(Exception):
        pass

    class Guard:
        calls = 0

        def should_stop(self, device):
            self.calls += 1
            return self.calls == 2  # after the first shard

        def requeue(self):
            raise Stop

    config = resolve_cache_config(parse_overrides(cache_args(tmp_path / "cache")[1:]))
    ctx = init_distributed(use_cuda=False)
    with pytest.raises(Stop):
        cache_latents(config, ctx, Guard())
    assert [p.name for p in (tmp_path / "cache" / "shards").iterdir()] == [
        "shard_000000.safetensors"
    ]
    assert cache_latents(config, ctx)["encoded_shards"] == 2
    ours, reference = _shards(tmp_path / "cache"), _shards(latent_cache)
    assert all(torch.equal(ours[k], reference[k]) for k in reference)


def test_shards_of_another_tokenizer_are_refused(tmp_path, cache_args, latent_cache):
    out = tmp_path / "cache"
    shutil.copytree(latent_cache / "shards", out / "shards")
    config = resolve_cache_config(
        parse_overrides(cache_args(out, tokenizer="random:va-vae-f16d32-tiny")[1:])
    )
    with pytest.raises(ValueError, match="was encoded by tokenizer weights with sha256"):
        cache_latents(config, init_distributed(use_cuda=False))


TWO_RANKS = """
import sys

import torch

from freqlat.core import cleanup, init_distributed
from freqlat.train.cache_config import resolve_cache_config
from freqlat.train.cache_latents import cache_latents
from freqlat.train.cli import parse_overrides

torch.set_num_threads(1)
ctx = init_distributed(use_cuda=False)
try:
    cache_latents(resolve_cache_config(parse_overrides(sys.argv[1:])), ctx)
finally:
    cleanup()
"""


def test_two_processes_write_the_cache_that_one_process_writes(
    tmp_path, cache_args, latent_cache, start_ranks
):
    out = tmp_path / "cache"
    ranks = start_ranks(TWO_RANKS, cache_args(out)[1:], 2, tmp_path / "logs")
    for rank, process in enumerate(ranks):
        assert process.wait(timeout=600) == 0, (tmp_path / "logs" / f"rank{rank}.txt").read_text()
    ours, reference = _shards(out), _shards(latent_cache)
    assert all(torch.equal(ours[k], reference[k]) for k in reference)
    ours, theirs = (json.loads((d / "manifest.json").read_text()) for d in (out, latent_cache))
    assert ours == theirs
    assert (out / "latent_space.json").read_text() == (
        latent_cache / "latent_space.json"
    ).read_text()


def test_config_checks_and_absolute_tokenizer_directories(tmp_path, monkeypatch):
    # the torch-free copies of the choices name what the packages accept
    assert set(CROP_NAMES) == set(CROPS) and NORMALIZATION_NAMES == NORMALIZATIONS
    with pytest.raises(ValueError, match="source_labels applies to --data embedded"):
        resolve_cache_config(
            {"tokenizer": TOKENIZER, "out": "x", "data": str(tmp_path), "source_labels": True}
        )
    with pytest.raises(ValueError, match="shard_size must be at least 1"):
        resolve_cache_config({"tokenizer": TOKENIZER, "out": "x", "shard_size": 0})
    with pytest.raises(ValueError, match="missing config keys"):
        resolve_cache_config({"out": "x"})
    (tmp_path / "tok").mkdir()
    monkeypatch.chdir(tmp_path)
    config = resolve_cache_config({"tokenizer": "tok:raw", "out": "x"})
    assert config.tokenizer == f"{tmp_path / 'tok'}:raw"
    assert (
        isinstance(config, CacheLatentsConfig) and config.launch.job_name == "freqlat-cache-latents"
    )

"""Latent caches: a tokenizer's latents of every training image, with and without a flip, on disk.

A generator trains on latents, not images: every training image is encoded once, as it is and
mirrored left-right (hustvl/LightningDiT ``extract_features.py``), and the generator reads the
cache. A cache directory holds::

    shards/shard_000000.safetensors   images [start, stop): "latents", "latents_flip" (N x C x h x w,
                                      float32), "labels" (N, int64); for a multi-scale VQ
                                      tokenizer also "tokens", "tokens_flip" (N x L, int32: every
                                      scale's token map, coarse first, row-major)
    latent_stats.json                 the LatentStatistics of the un-flipped latents of a sample
    latent_space.json                 the LatentSpace: tokenizer spec and normalisation
    manifest.json                     written last (a cache without it is unfinished): tokenizer
                                      spec and the sha256 of its weights, image size, crop,
                                      count, classes, shapes, shard list

Shards are written atomically and each records, in its safetensors metadata, its range and
the tokenizer weights it was made with, so an interrupted cache resumes without encoding a
finished shard again, and never mixes two tokenizers. :class:`LatentDataset` reads a finished
cache by keys ``index`` or ``(index, flip)``, the keys :class:`freqlat.core.ResumableSampler`
draws, so a generator run that resumes sees the same latents, flipped the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn
from torch.utils.data import Dataset

from freqlat.generators.latent_space import LatentSpace
from freqlat.tokenizers.latent_stats import LatentStatistics

CACHE_FORMAT = "freqlat-latent-cache"
CACHE_VERSION = 1
MANIFEST_NAME = "manifest.json"
STATS_NAME = "latent_stats.json"
SHARD_DIR = "shards"
LATENTS, LATENTS_FLIP, LABELS = "latents", "latents_flip", "labels"
TOKENS, TOKENS_FLIP = "tokens", "tokens_flip"


def shard_name(index: int) -> str:
    """The file name of shard ``index`` inside the cache's ``shards/`` folder."""
    return f"shard_{index:06d}.safetensors"


def shard_ranges(count: int, shard_size: int) -> list[tuple[int, int]]:
    """The image ranges [start, stop) of the shards of a ``count``-image cache."""
    if count < 1 or shard_size < 1:
        raise ValueError(f"need count >= 1 and shard_size >= 1, got {count} and {shard_size}")
    return [(start, min(start + shard_size, count)) for start in range(0, count, shard_size)]


def posterior_seed(seed: int, index: int, flip: bool) -> int:
    """The seed of image ``index``'s posterior sample (``flip``: of its mirror image).

    A pure function of its arguments, so a cached latent does not depend on the batch, the
    shard or the number of processes that encoded it.
    """
    state = np.random.SeedSequence([seed, index, int(flip)]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


def weights_sha256(module: nn.Module) -> str:
    """sha256 over ``module``'s state dict (names, dtypes, shapes and bytes, in name order).

    Identifies the tokenizer weights a cache was made with, however they were loaded.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_shard(
    path: str | Path, tensors: Mapping[str, Tensor], metadata: Mapping[str, str]
) -> Path:
    """Write a safetensors shard atomically: a hidden temporary file, fsync, rename, fsync."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".tmp-{path.name}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(temp), metadata=dict(metadata))
    _fsync(temp)
    os.replace(temp, path)
    _fsync(path.parent)
    return path


def read_shard_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a shard written by :func:`write_shard` (its range, the tokenizer hash)."""
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".tmp-{path.name}")
    temp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, path)
    return path


@dataclass(frozen=True)
class CacheManifest:
    """What a finished latent cache holds and how it was made (``manifest.json``).

    ``tokenizer`` is the :func:`freqlat.tokenizers.load_tokenizer` spec (directories made
    absolute) and ``tokenizer_sha256`` the hash of its weights (:func:`weights_sha256`);
    ``sample`` says whether latents are posterior samples (seeded per image by
    :func:`posterior_seed` from ``seed``) or the posterior mode. ``patch_sizes`` and
    ``vocab_size`` are set for multi-scale VQ tokenizers, whose token maps are cached too.
    ``shards`` lists ``[file, start, stop]`` relative to the cache directory.
    """

    tokenizer: str
    tokenizer_sha256: str
    data: str
    image_size: int
    crop: str
    count: int
    num_classes: int
    latent_shape: tuple[int, int, int]
    sample: bool
    seed: int
    shard_size: int
    shards: tuple[tuple[str, int, int], ...]
    statistics_samples: int
    classes: tuple[str, ...] = ()
    labels: str = "dataset"
    patch_sizes: tuple[int, ...] | None = None
    vocab_size: int | None = None
    format: str = CACHE_FORMAT
    version: int = CACHE_VERSION

    @property
    def has_tokens(self) -> bool:
        """True when the shards hold token maps (a multi-scale VQ tokenizer's cache)."""
        return self.patch_sizes is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = MANIFEST_NAME) -> CacheManifest:
        """Rebuild from :meth:`to_dict`; a foreign file or a missing field is a ValueError."""
        if data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
            raise ValueError(
                f"{source} is not a {CACHE_FORMAT} manifest of version {CACHE_VERSION} "
                f"(format {data.get('format')!r}, version {data.get('version')!r})"
            )
        values = dict(data)
        values["latent_shape"] = tuple(values["latent_shape"])
        values["shards"] = tuple(tuple(entry) for entry in values["shards"])
        values["classes"] = tuple(values.get("classes", ()))
        if values.get("patch_sizes") is not None:
            values["patch_sizes"] = tuple(values["patch_sizes"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(f"{source}: {exc}") from exc


class LatentCache:
    """A finished latent cache directory: its manifest, latent space and statistics.

    Raises FileNotFoundError naming the directory when it is not a finished cache (no
    ``manifest.json``: not a cache, or ``cache-latents`` has not finished).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).resolve()
        path = self.directory / MANIFEST_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"{directory} is not a finished latent cache: no {MANIFEST_NAME} (make one with "
                "freqlat-train cache-latents, and let it finish)"
            )
        self.manifest = CacheManifest.from_dict(json.loads(path.read_text("utf-8")), str(path))
        self.latent_space = LatentSpace.load(self.directory)

    def __len__(self) -> int:
        return self.manifest.count

    def statistics(self) -> LatentStatistics:
        """The latent statistics saved beside the shards (channel moments, group scales)."""
        path = self.directory / STATS_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no {STATS_NAME} in {self.directory}")
        return LatentStatistics.from_dict(json.loads(path.read_text("utf-8")))

    def shard_paths(self) -> list[Path]:
        """The shard files, in image order."""
        return [self.directory / name for name, _, _ in self.manifest.shards]

    def locate(self, index: int) -> tuple[int, int]:
        """``(shard, row)`` of image ``index``."""
        if not 0 <= index < self.manifest.count:
            raise IndexError(f"index {index} out of range for {self.manifest.count} cached images")
        shard = index // self.manifest.shard_size
        start = self.manifest.shards[shard][1]
        return shard, index - start


class LatentDataset(Dataset):
    """Items of a latent cache by key ``index`` or ``(index, flip)``: ``(latent, label)``.

    ``latent`` is the tokenizer's raw C x h x w latent (float32; normalise a batch with the
    cache's :class:`LatentSpace`), of the mirrored image when ``flip``. With ``tokens`` the item
    is ``(tokens, label)`` instead: the L token indices of every scale (int64), for VAR.
    Shards are opened lazily (memory-mapped), once per process, so the dataset can be handed
    to DataLoader workers.
    """

    def __init__(self, cache: LatentCache | str | Path, *, tokens: bool = False) -> None:
        self.cache = cache if isinstance(cache, LatentCache) else LatentCache(cache)
        if tokens and not self.cache.manifest.has_tokens:
            raise ValueError(
                f"{self.cache.directory} holds no token maps: its tokenizer "
                f"{self.cache.manifest.tokenizer!r} is not a multi-scale VQ tokenizer"
            )
        self.tokens = tokens
        self._paths = self.cache.shard_paths()
        self._handles: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.cache)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    def _handle(self, shard: int) -> Any:
        if shard not in self._handles:
            self._handles[shard] = safe_open(str(self._paths[shard]), framework="pt")
        return self._handles[shard]

    def __getitem__(self, key: int | Sequence) -> tuple[Tensor, int]:
        if isinstance(key, tuple | list):
            index, flip = int(key[0]), bool(key[1])
        else:
            index, flip = int(key), False
        shard, row = self.cache.locate(index)
        handle = self._handle(shard)
        if self.tokens:
            name = TOKENS_FLIP if flip else TOKENS
            value = handle.get_slice(name)[row : row + 1][0].long()
        else:
            value = handle.get_slice(LATENTS_FLIP if flip else LATENTS)[row : row + 1][0]
        label = int(handle.get_slice(LABELS)[row : row + 1][0])
        return value, label


def split_tokens(tokens: Tensor, patch_sizes: Sequence[int]) -> list[Tensor]:
    """Cut N x L tokens into the per-scale maps N x pn x pn (coarse first)."""
    lengths = [pn * pn for pn in patch_sizes]
    if tokens.shape[-1] != sum(lengths):
        raise ValueError(f"expected {sum(lengths)} tokens per image, got {tokens.shape[-1]}")
    return [
        chunk.reshape(tokens.shape[0], pn, pn)
        for chunk, pn in zip(tokens.split(lengths, dim=1), patch_sizes, strict=True)
    ]

"""The resumable data order: a pure function of (seed, epoch, rank, world) that resumes exactly."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.data import Dataset

from freqlat.core.sampler import ResumableLoader, ResumableSampler


class IndexDataset(Dataset):
    """Item i is (tensor [i, flip], i), so batches reveal the exact keys."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key):
        index, flip = key if isinstance(key, tuple) else (key, False)
        return torch.tensor([index, int(flip)]), index


def test_order_is_a_pure_function_of_seed_epoch_rank_and_world():
    a = ResumableSampler(50, seed=3, rank=1, world_size=4, random_flip=True)
    b = ResumableSampler(50, seed=3, rank=1, world_size=4, random_flip=True)
    assert a.shard(5) == b.shard(5)
    assert a.shard(5) != a.shard(6)
    assert a.shard(5) != ResumableSampler(50, seed=4, rank=1, world_size=4).shard(5)


def test_ranks_partition_the_epoch_without_overlap():
    shards = [ResumableSampler(40, seed=0, rank=r, world_size=4).shard(2) for r in range(4)]
    assert sorted(itertools.chain(*shards)) == list(range(40))


def test_uneven_sizes_pad_or_drop_like_distributed_sampler():
    padded = [ResumableSampler(10, seed=0, rank=r, world_size=4).shard(0) for r in range(4)]
    assert all(len(s) == 3 for s in padded) and set(itertools.chain(*padded)) == set(range(10))
    dropped = [
        ResumableSampler(10, seed=0, rank=r, world_size=4, drop_last=True).shard(0)
        for r in range(4)
    ]
    assert all(len(s) == 2 for s in dropped)


def test_flips_are_random_but_part_of_the_order():
    keys = ResumableSampler(200, seed=1, random_flip=True).shard(0)
    flips = [flip for _, flip in keys]
    assert 60 < sum(flips) < 140
    assert ResumableSampler(200, seed=1).shard(0) == [index for index, _ in keys]


def test_sampler_starts_mid_epoch():
    sampler = ResumableSampler(30, seed=2)
    sampler.set_position(epoch=1, start=12)
    assert list(sampler) == sampler.shard(1)[12:] and len(sampler) == 18


def _stream(loader: ResumableLoader, batches: int) -> list[list[int]]:
    return [batch[0].tolist() for batch in itertools.islice(loader, batches)]


@pytest.mark.parametrize("stop_after", [1, 3, 4, 7])
def test_resumed_loader_continues_the_uninterrupted_stream(stop_after: int):
    def make() -> ResumableLoader:
        return ResumableLoader(IndexDataset(17), 4, seed=9, rank=1, world_size=2, random_flip=True)

    # 8 samples per rank and epoch, 2 batches of 4: 10 batches cross 4 epoch boundaries.
    uninterrupted = _stream(make(), 10)
    first = make()
    head = _stream(first, stop_after)
    state = first.state_dict()
    second = make()
    second.load_state_dict(state)
    assert head + _stream(second, 10 - stop_after) == uninterrupted


def test_loader_position_counts_consumed_samples_and_epochs():
    loader = ResumableLoader(IndexDataset(10), 3, seed=0)  # 3 full batches per epoch
    _stream(loader, 4)
    assert (loader.state_dict()["epoch"], loader.state_dict()["index"]) == (1, 3)
    assert loader.batches_per_epoch == 3


def test_loader_refuses_a_position_from_a_different_order():
    state = ResumableLoader(IndexDataset(10), 2, seed=0).state_dict()
    other = ResumableLoader(IndexDataset(10), 2, seed=1)
    with pytest.raises(ValueError, match="seed"):
        other.load_state_dict(state)


def test_loader_with_workers_gives_the_same_stream():
    plain = _stream(ResumableLoader(IndexDataset(12), 3, seed=5, random_flip=True), 6)
    workers = ResumableLoader(IndexDataset(12), 3, seed=5, random_flip=True, num_workers=1)
    assert _stream(workers, 6) == plain

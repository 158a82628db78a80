"""A data order that can be resumed exactly, and an endless loader built on it.

The order of an epoch is a pure function of ``(seed, epoch, rank, world_size)`` and the dataset
length: a seeded permutation of the whole dataset (plus one coin flip per position for random
horizontal flips) is cut into ``world_size`` interleaved shards, as torch's DistributedSampler
does. The position in the stream is ``(epoch, index)``, ``index`` counting the samples of this
rank's shard already consumed, so a run restarted from a checkpoint sees the same samples, with
the same flips, in the same batches as a run that never stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from freqlat.core.data import DatasetKey


def epoch_order(
    num_samples: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    random_flip: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Global order of one epoch: ``(indices, flips)``, both of length ``num_samples``.

    ``indices`` is a permutation (identity without ``shuffle``); ``flips`` holds one fair coin per
    position (all False without ``random_flip``). Both come from numpy's PCG64 seeded with
    ``SeedSequence([seed, epoch])``.
    """
    if num_samples < 1:
        raise ValueError(f"cannot order an empty dataset (num_samples={num_samples})")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch])))
    indices = rng.permutation(num_samples) if shuffle else np.arange(num_samples)
    flips = rng.random(num_samples) < 0.5 if random_flip else np.zeros(num_samples, dtype=bool)
    return indices, flips


class ResumableSampler(Sampler[DatasetKey]):
    """Sampler over one rank's shard of a seeded epoch order, startable mid-epoch.

    With ``drop_last`` the tail that does not divide evenly among ranks is dropped; otherwise the
    order is padded by wrapping around (DistributedSampler's convention). With ``random_flip`` it
    yields keys ``(index, flip)`` that the freqlat datasets understand, else plain indices.
    Call :meth:`set_position` before iterating; the sampler then yields the shard from there.
    """

    def __init__(
        self,
        dataset_size: int,
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        random_flip: bool = False,
        drop_last: bool = False,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank} world={world_size}")
        if dataset_size < world_size and drop_last:
            raise ValueError(f"{dataset_size} samples cannot be shared among {world_size} ranks")
        self.dataset_size = dataset_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.random_flip = random_flip
        self.drop_last = drop_last
        if drop_last:
            self.shard_size = dataset_size // world_size
        else:
            self.shard_size = -(-dataset_size // world_size)
        self.epoch = 0
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Make the next iteration cover epoch ``epoch`` from shard position ``start``."""
        if epoch < 0 or not 0 <= start <= self.shard_size:
            raise ValueError(f"bad position epoch={epoch} start={start} (shard {self.shard_size})")
        self.epoch = epoch
        self.start = start

    def shard(self, epoch: int) -> list[DatasetKey]:
        """This rank's keys for a whole epoch, in order."""
        indices, flips = epoch_order(
            self.dataset_size,
            seed=self.seed,
            epoch=epoch,
            shuffle=self.shuffle,
            random_flip=self.random_flip,
        )
        total = self.shard_size * self.world_size
        if total > self.dataset_size:
            repeat = -(-total // self.dataset_size)
            indices, flips = np.tile(indices, repeat), np.tile(flips, repeat)
        indices = indices[self.rank : total : self.world_size]
        flips = flips[self.rank : total : self.world_size]
        if self.random_flip:
            return [(int(i), bool(f)) for i, f in zip(indices, flips, strict=True)]
        return [int(i) for i in indices]

    def __iter__(self) -> Iterator[DatasetKey]:
        return iter(self.shard(self.epoch)[self.start :])

    def __len__(self) -> int:
        return self.shard_size - self.start


class ResumableLoader:
    """An endless stream of batches whose position can be saved and restored exactly.

    Wraps one DataLoader over a :class:`ResumableSampler`. Iterating yields batches forever,
    epoch after epoch; :meth:`state_dict` is the position *after* the last batch handed out, so
    saving it together with the model after a training step and restoring both resumes the
    stream at the next batch. With ``drop_last`` (the default) every batch is full and an epoch's
    leftover samples are skipped. All ranks consume the same number of samples per batch, so the
    position saved by rank 0 is valid for every rank (the ``rank`` field is informational).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        random_flip: bool = False,
        drop_last: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        **loader_kwargs: Any,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = ResumableSampler(
            len(dataset),  # type: ignore[arg-type]
            seed=seed,
            rank=rank,
            world_size=world_size,
            shuffle=shuffle,
            random_flip=random_flip,
            drop_last=drop_last,
        )
        if drop_last and self.sampler.shard_size < batch_size:
            raise ValueError(
                f"each rank sees {self.sampler.shard_size} samples per epoch, fewer than one "
                f"batch of {batch_size}; lower the batch size or use drop_last=False"
            )
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            drop_last=drop_last,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
            # Each new DataLoader iterator draws a worker base seed from this generator; with the
            # global one, resuming mid-epoch would shift the global torch RNG stream.
            generator=torch.Generator().manual_seed(seed),
            **loader_kwargs,
        )
        self.epoch = 0
        self.index = 0

    @property
    def batches_per_epoch(self) -> int:
        """Number of batches one rank sees in a full epoch."""
        if self.drop_last:
            return self.sampler.shard_size // self.batch_size
        return -(-self.sampler.shard_size // self.batch_size)

    def _epoch_is_done(self) -> bool:
        remaining = self.sampler.shard_size - self.index
        return remaining == 0 or (self.drop_last and remaining < self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        while True:
            if self._epoch_is_done():
                self.epoch, self.index = self.epoch + 1, 0
            self.sampler.set_position(self.epoch, self.index)
            for batch in self.loader:
                first = batch[0] if isinstance(batch, list | tuple) else batch
                self.index += len(first)
                yield batch

    def state_dict(self) -> dict[str, int]:
        """The stream position (epoch, index) and the facts the order depends on."""
        return {
            "epoch": self.epoch,
            "index": self.index,
            "seed": self.sampler.seed,
            "rank": self.sampler.rank,
            "world_size": self.sampler.world_size,
            "dataset_size": self.sampler.dataset_size,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore a position saved by :meth:`state_dict`.

        The seed, world size, dataset size and batch size must match, since the order and the
        batch boundaries depend on them; a mismatch is a ValueError naming the field.
        """
        for field in ("seed", "world_size", "dataset_size", "batch_size"):
            ours = self.state_dict()[field]
            if int(state[field]) != ours:
                raise ValueError(
                    f"cannot resume the data order: saved {field}={int(state[field])}, "
                    f"this run has {field}={ours}"
                )
        self.epoch = int(state["epoch"])
        self.index = int(state["index"])

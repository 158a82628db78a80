"""Console, tensorboard and progress-bar logging that only rank 0 does."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm import tqdm

from freqlat.core.distributed import get_rank

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s [rank %(rank)d] %(levelname)s %(name)s: %(message)s"


class _RankFilter(logging.Filter):
    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank = self.rank
        return True


def setup_logging(
    log_file: str | os.PathLike[str] | None = None, level: int = logging.INFO
) -> logging.Logger:
    """Configure the ``freqlat`` logger: console on every rank (warnings only off rank 0),
    plus ``log_file`` on rank 0 if given. Calling it again replaces the previous handlers.
    """
    rank = get_rank()
    root = logging.getLogger("freqlat")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    root.propagate = False
    formatter = logging.Formatter(LOG_FORMAT)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level if rank == 0 else logging.WARNING)
    handlers: list[logging.Handler] = [console]
    if log_file is not None and rank == 0:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_RankFilter(rank))
        root.addHandler(handler)
    return root


class MetricWriter:
    """Writes scalars and images to tensorboard on rank 0; does nothing on other ranks."""

    def __init__(self, log_dir: str | os.PathLike[str] | None) -> None:
        self.writer = None
        if log_dir is not None and get_rank() == 0:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, values: Mapping[str, float | torch.Tensor], step: int) -> None:
        """Log each ``name: value`` at ``step`` (tensors must hold one number)."""
        if self.writer is None:
            return
        for name, value in values.items():
            number = value.item() if isinstance(value, torch.Tensor) else float(value)
            self.writer.add_scalar(name, number, step)

    def image(self, name: str, image: torch.Tensor, step: int) -> None:
        """Log a 3 x H x W image with values in [-1, 1] (e.g. a reconstruction grid)."""
        if self.writer is not None:
            self.writer.add_image(name, ((image.detach().float().cpu() + 1) / 2).clamp(0, 1), step)

    def flush(self) -> None:
        """Push pending events to disk."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def progress(iterable: Iterable[T] | None = None, **tqdm_kwargs: Any) -> tqdm:
    """A tqdm progress bar shown on rank 0 only (``disable`` is set on the other ranks)."""
    tqdm_kwargs.setdefault("dynamic_ncols", True)
    disable = bool(tqdm_kwargs.pop("disable", False)) or get_rank() != 0
    return tqdm(iterable, disable=disable, **tqdm_kwargs)


def save_image_grid(path: str | os.PathLike[str], images: torch.Tensor, nrow: int) -> torch.Tensor:
    """Tile images (N x 3 x H x W in [-1, 1]) ``nrow`` to a row with a 2-pixel black border
    and write them as one PNG at ``path`` (folders created); returns the 3 x H' x W' grid."""
    from torchvision.utils import make_grid, save_image

    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, pad_value=-1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image((grid + 1) / 2, path)
    return grid

"""Training-state checkpoints: one directory per step, written atomically.

Layout of ``<root>/step_000000100/``::

    <name>.safetensors    weights: one file per entry of ``weights`` (model, EMA, discriminator)
    training_state.pt     state dicts of ``states`` (optimisers, scaler, LR schedule, data position)
    rng_rank_00000.pt     every RNG of each rank (Python, numpy, torch CPU, CUDA)
    meta.json             step, format version, and the caller's JSON metadata (e.g. the config)
    COMPLETE              written last

Everything is written into a hidden temporary directory beside the final one, every file and
the directory are fsync'ed, and the directory is renamed into place; :func:`latest_checkpoint`
only considers ``step_*`` directories with a ``COMPLETE`` marker, so a half-written checkpoint
is never picked. ``.pt`` files are read with ``torch.load(weights_only=True)``.

Under torch.distributed every rank calls :func:`save_checkpoint` and :func:`load_checkpoint`:
each rank writes and restores its own RNG file; rank 0 writes everything else (so optimiser state
must be the same on all ranks, as with DDP). The run directory must be on a shared filesystem.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file, save_file

from freqlat.core.distributed import barrier, get_rank
from freqlat.core.rng import capture_rng_state, restore_rng_state

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the checkpoint layout written into meta.json."""

# File names inside a checkpoint directory (see the module docstring).
COMPLETE_MARKER = "COMPLETE"
TRAINING_STATE_FILE = "training_state.pt"
META_FILE = "meta.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")
_TEMP_PREFIX = ".tmp-"


class Stateful(Protocol):
    """Anything with ``state_dict()`` and ``load_state_dict()``: modules, optimisers, EMA..."""

    def state_dict(self) -> Mapping[str, Any]:
        """The object's state, made of tensors and plain Python values."""
        ...

    def load_state_dict(self, state_dict: Mapping[str, Any], /) -> Any:
        """Put back a state returned by ``state_dict()``."""
        ...


@dataclass(frozen=True)
class CheckpointInfo:
    """What :func:`load_checkpoint` read: the directory, its step and its JSON metadata."""

    path: Path
    step: int
    metadata: dict[str, Any]


def checkpoint_dir_name(step: int) -> str:
    """Name of the directory of ``step`` (zero-padded so names sort like steps)."""
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    return f"step_{step:09d}"


def rng_file_name(rank: int) -> str:
    """Name of the file holding the RNG state of ``rank``."""
    return f"rng_rank_{rank:05d}.pt"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_torch(obj: Any, path: Path) -> None:
    torch.save(obj, path)
    _fsync_file(path)


def _write_text(text: str, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _tensor_state(name: str, obj: Stateful) -> dict[str, torch.Tensor]:
    """A flat name -> tensor dict on CPU, with no storage shared between entries."""
    state = obj.state_dict()
    bad = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise ValueError(f"weights '{name}' must hold only tensors; non-tensor entries: {bad[:5]}")
    return {key: value.detach().to("cpu", copy=True).contiguous() for key, value in state.items()}


def is_complete(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a finished checkpoint directory (marker and meta.json present)."""
    path = Path(path)
    return (path / COMPLETE_MARKER).is_file() and (path / META_FILE).is_file()


def list_checkpoints(root: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoint directories under ``root``, oldest step first (empty if none)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _STEP_DIR.match(entry.name)
        if match and entry.is_dir() and is_complete(entry):
            found.append((int(match.group(1)), entry))
    return [path for _, path in sorted(found)]


def latest_checkpoint(root: str | os.PathLike[str]) -> Path | None:
    """The complete checkpoint with the highest step under ``root``, or None."""
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def prune_checkpoints(root: str | os.PathLike[str], keep_last: int) -> list[Path]:
    """Delete all but the ``keep_last`` newest complete checkpoints and any stale temp dirs.

    Only call it while no checkpoint of this run is being written. Returns what was deleted.
    """
    if keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}")
    root = Path(root)
    doomed = list_checkpoints(root)[:-keep_last]
    doomed += [p for p in root.iterdir() if p.name.startswith(_TEMP_PREFIX) and p.is_dir()]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def save_checkpoint(
    root: str | os.PathLike[str],
    step: int,
    *,
    weights: Mapping[str, Stateful] | None = None,
    states: Mapping[str, Stateful] | None = None,
    metadata: Mapping[str, Any] | None = None,
    keep_last: int | None = None,
) -> Path:
    """Write the checkpoint of ``step`` under ``root`` atomically and return its directory.

    ``weights`` maps a name to anything whose ``state_dict()`` is a flat dict of tensors
    (``nn.Module``, :class:`freqlat.core.ema.EMA`); each goes to ``<name>.safetensors``.
    ``states`` maps a name to anything else with a state dict (optimiser, GradScaler, LR
    scheduler, :class:`freqlat.core.sampler.ResumableLoader`); they go to training_state.pt.
    ``metadata`` must be JSON-serialisable. The RNG states are always saved. With ``keep_last``
    only that many newest checkpoints are kept. An existing checkpoint of the same step is
    replaced. Under torch.distributed all ranks must call this together.
    """
    weights = dict(weights or {})
    states = dict(states or {})
    overlap = set(weights) & set(states)
    if overlap:
        raise ValueError(f"names used for both weights and states: {sorted(overlap)}")
    try:
        meta_text = json.dumps(
            {"format_version": FORMAT_VERSION, "step": step, "metadata": dict(metadata or {})},
            indent=2,
            sort_keys=True,
        )
    except TypeError as exc:
        raise ValueError(f"checkpoint metadata must be JSON-serialisable: {exc}") from exc
    root = Path(root)
    final = root / checkpoint_dir_name(step)
    temp = root / f"{_TEMP_PREFIX}{final.name}"
    rank = get_rank()
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
    barrier()
    _write_torch(capture_rng_state(), temp / rng_file_name(rank))
    if rank == 0:
        for name, obj in weights.items():
            path = temp / f"{name}.safetensors"
            save_file(_tensor_state(name, obj), str(path))
            _fsync_file(path)
        training_state = {name: obj.state_dict() for name, obj in states.items()}
        _write_torch(training_state, temp / TRAINING_STATE_FILE)
        _write_text(meta_text, temp / META_FILE)
    barrier()
    if rank == 0:
        _write_text("", temp / COMPLETE_MARKER)
        _fsync_dir(temp)
        if final.exists():
            stale = root / f"{_TEMP_PREFIX}replaced-{final.name}"
            shutil.rmtree(stale, ignore_errors=True)
            os.rename(final, stale)
            shutil.rmtree(stale)
        os.rename(temp, final)
        _fsync_dir(root)
        if keep_last is not None:
            prune_checkpoints(root, keep_last)
        logger.info("saved checkpoint %s", final)
    barrier()
    return final


def read_metadata(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Read a checkpoint's step and metadata without loading any tensor."""
    path = Path(path)
    if not is_complete(path):
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {COMPLETE_MARKER} file)")
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {meta.get('format_version')}, expected {FORMAT_VERSION}"
        )
    return CheckpointInfo(path=path, step=int(meta["step"]), metadata=meta["metadata"])


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    weights: Mapping[str, Stateful] | None = None,
    states: Mapping[str, Stateful] | None = None,
    restore_rng: bool = True,
) -> CheckpointInfo:
    """Load a checkpoint directory into the given objects and return its step and metadata.

    Every name in ``weights`` / ``states`` must be present in the checkpoint (a missing one is
    an error naming what is there); modules are loaded strictly. With ``restore_rng`` this rank's
    RNG states are restored; a checkpoint written with fewer ranks has no file for this rank, in
    which case a warning is logged and the RNGs are left alone.
    """
    info = read_metadata(path)
    path = info.path
    for name, obj in (weights or {}).items():
        file = path / f"{name}.safetensors"
        if not file.is_file():
            present = sorted(p.stem for p in path.glob("*.safetensors"))
            raise FileNotFoundError(f"checkpoint {path} has no weights '{name}' (has {present})")
        obj.load_state_dict(load_file(str(file), device="cpu"))
    if states:
        saved = torch.load(path / TRAINING_STATE_FILE, map_location="cpu", weights_only=True)
        for name, obj in states.items():
            if name not in saved:
                raise ValueError(f"checkpoint {path} has no state '{name}' (has {sorted(saved)})")
            obj.load_state_dict(saved[name])
    if restore_rng:
        rng_file = path / rng_file_name(get_rank())
        if rng_file.is_file():
            restore_rng_state(torch.load(rng_file, map_location="cpu", weights_only=True))
        else:
            logger.warning("no RNG state for rank %d in %s; RNGs not restored", get_rank(), path)
    return info

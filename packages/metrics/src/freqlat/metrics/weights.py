"""Finding and checking pretrained weight files without a network.

Nothing here downloads. Weights are read from an explicit path or from the torch hub cache
(``$TORCH_HOME/hub/checkpoints``, i.e. ``torch.hub.get_dir() / "checkpoints"``) under the file
name the reference package itself would download to. A missing file raises FileNotFoundError
naming the file, every path searched, the download URL and the checksum, where one is published.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class WeightsFile:
    """A pretrained weights file the metrics need: the names it is cached under and its origin."""

    description: str
    file_names: tuple[str, ...]
    url: str
    sha256: str | None
    sha256_note: str = ""

    def checksum_text(self) -> str:
        """The sha256 to quote in messages, or why there is none to quote."""
        if self.sha256 is not None:
            return f"sha256 {self.sha256}"
        return (
            f"sha256 not published ({self.sha256_note})"
            if self.sha256_note
            else "sha256 not published"
        )


def hub_checkpoint_dir() -> Path:
    """The torch hub checkpoint cache, ``$TORCH_HOME/hub/checkpoints`` (torch's default rules)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def locate_weights(spec: WeightsFile, path: str | os.PathLike[str] | None = None) -> Path:
    """Return the weights file to load: ``path`` if given, else the first cached name that exists.

    Raises FileNotFoundError with the file name(s), the searched paths, the URL and the checksum.
    """
    if path is not None:
        candidates = [Path(path)]
    else:
        cache = hub_checkpoint_dir()
        candidates = [cache / name for name in spec.file_names]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"{spec.description}: weights file {' or '.join(spec.file_names)} not found. "
        f"Searched: {searched}. Download it from {spec.url} ({spec.checksum_text()}) and put it in "
        f"{hub_checkpoint_dir()} (set TORCH_HOME to move that cache) or pass its path explicitly. "
        "No random weights are substituted."
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: str | os.PathLike[str], expected: str) -> None:
    """Raise ValueError unless the file's sha256 equals ``expected``."""
    actual = file_sha256(path)
    if actual != expected:
        raise ValueError(
            f"sha256 of {path} is {actual}, expected {expected}: the file is not the one pinned"
        )


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a tensor state dict on CPU with ``weights_only=True`` (no arbitrary pickles)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return state

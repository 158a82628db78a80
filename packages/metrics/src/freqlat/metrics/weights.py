"""Finding and verifying pretrained weight files without a network.

Nothing here downloads. Weights are read from an explicit path or from the torch hub cache
(``$TORCH_HOME/hub/checkpoints``, i.e. ``torch.hub.get_dir() / "checkpoints"``) under the file
name the reference package itself would download to. A missing file raises FileNotFoundError
naming the file, every path searched, the download URL and the checksum, where one is published.

Every file is verified before a metric or loss uses it (:func:`verify_weights`): against its full
published sha256, or against the sha256 prefix that torch.hub-style file names carry
(``vgg16-397923af.pth``: the first 8 hex digits). A mismatch raises
:class:`WeightsVerificationError` naming the file, both hashes and where to get the right one.
This module is the one verifier of the workspace: the tokenizers' foundation-model loader and
``tools/fetch_weights.py`` use it too.

Hashing a 500 MB file costs seconds, so digests are cached in a JSON file,
``$FREQLAT_CACHE/weights-sha256.json`` (default ``~/.cache/freqlat/weights-sha256.json``), keyed
by the file's resolved path and validated by its size, modification time (ns) and inode: a file
that changed in any of these is hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

CACHE_ENV = "FREQLAT_CACHE"
"""Root of freqlat's caches (shared with ``freqlat.tokenizers``); the digest cache lives in it."""

HASH_CACHE_NAME = "weights-sha256.json"
_HEX = re.compile(r"[0-9a-f]{8,64}")


@dataclass(frozen=True)
class WeightsFile:
    """A pretrained weights file: the names it is cached under, its origin, and its checksum.

    ``sha256`` is the full published digest; ``sha256_prefix`` the leading hex digits where only
    those are published (torch.hub file names, ``<name>-<prefix>.pth``). ``sha256_note`` says
    where the checksum comes from, or why there is none.
    """

    description: str
    file_names: tuple[str, ...]
    url: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    sha256_note: str = ""

    def __post_init__(self) -> None:
        for name in ("sha256", "sha256_prefix"):
            value = getattr(self, name)
            if value is not None and not _HEX.fullmatch(value):
                raise ValueError(f"{self.description}: {name} {value!r} is not lower-case hex")

    @property
    def published(self) -> bool:
        """Whether any checksum (full or prefix) is published for this file."""
        return bool(self.sha256 or self.sha256_prefix)

    def checksum_text(self) -> str:
        """The checksum to quote in messages, or why there is none to quote."""
        note = f"; {self.sha256_note}" if self.sha256_note else ""
        if self.sha256:
            return f"sha256 {self.sha256}{note}"
        if self.sha256_prefix:
            return f"sha256 starting with {self.sha256_prefix}{note}"
        return f"sha256 not published{note}"


class WeightsVerificationError(ValueError):
    """A weights file whose sha256 is not the published one."""


def hub_checkpoint_dir() -> Path:
    """The torch hub checkpoint cache, ``$TORCH_HOME/hub/checkpoints`` (torch's default rules)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hash_cache_path() -> Path:
    """Where computed digests are kept: ``$FREQLAT_CACHE/weights-sha256.json``."""
    root = os.environ.get(CACHE_ENV) or "~/.cache/freqlat"
    return Path(root).expanduser() / HASH_CACHE_NAME


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (no cache)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


def _read_hash_cache(cache: Path) -> dict[str, dict]:
    try:
        entries = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}  # no cache yet, or a damaged one: it is rebuilt
    return entries if isinstance(entries, dict) else {}


def _write_hash_cache(cache: Path, entries: dict[str, dict]) -> None:
    """Atomic replace; entries of files that no longer exist are dropped. Failures are ignored."""
    live = {key: value for key, value in entries.items() if os.path.exists(key)}
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.name}.")
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(live, handle, indent=1, sort_keys=True)
            os.replace(temp, cache)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def cached_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, hashed once per (resolved path, size, mtime_ns, inode) and then cached.

    The cache is :func:`hash_cache_path`; an unreadable or unwritable cache only costs a re-hash.
    """
    resolved = Path(path).resolve()
    fingerprint = _fingerprint(resolved)
    cache = hash_cache_path()
    entries = _read_hash_cache(cache)
    entry = entries.get(str(resolved))
    if (
        isinstance(entry, dict)
        and all(entry.get(key) == value for key, value in fingerprint.items())
        and isinstance(entry.get("sha256"), str)
        and len(entry["sha256"]) == 64
    ):
        return entry["sha256"]
    digest = file_sha256(resolved)
    if _fingerprint(resolved) == fingerprint:  # unchanged while it was read: safe to remember
        entries[str(resolved)] = {**fingerprint, "sha256": digest}
        _write_hash_cache(cache, entries)
    return digest


def sha256_mismatch(spec: WeightsFile, digest: str) -> str | None:
    """Why ``digest`` is not ``spec``'s published sha256 (actual and expected), or None if it is.

    A full digest, where one is known, supersedes the prefix.
    """
    if spec.sha256:
        return None if digest == spec.sha256 else f"its sha256 is {digest}, expected {spec.sha256}"
    if spec.sha256_prefix and not digest.startswith(spec.sha256_prefix):
        return f"its sha256 is {digest}, expected one starting with {spec.sha256_prefix}"
    return None


def verify_weights(spec: WeightsFile, path: str | os.PathLike[str]) -> str:
    """Check a weights file against ``spec``'s published checksum; return its sha256.

    Raises :class:`WeightsVerificationError` on a mismatch. A file for which nothing is published
    cannot be verified: it is accepted with a warning that gives its sha256 to compare.
    """
    digest = cached_sha256(path)
    problem = sha256_mismatch(spec, digest)
    if problem is not None:
        raise WeightsVerificationError(
            f"{spec.description}: {path} failed verification: {problem} "
            f"({spec.checksum_text()}). It is not the published file (a partial download, other "
            f"weights or random weights). Download it again from {spec.url} and replace it, or "
            "pass the path of the right file."
        )
    if not spec.published:
        warnings.warn(
            f"{spec.description}: {path} cannot be verified ({spec.checksum_text()}); its sha256 "
            f"is {digest}: compare it with the one of your source",
            UserWarning,
            stacklevel=2,
        )
    return digest


def locate_weights(spec: WeightsFile, path: str | os.PathLike[str] | None = None) -> Path:
    """Return the verified weights file: ``path`` if given, else the first cached name that exists.

    Raises FileNotFoundError with the file name(s), the searched paths, the URL and the checksum,
    and :class:`WeightsVerificationError` if the file found is not the published one.
    """
    if path is not None:
        candidates = [Path(path)]
    else:
        cache = hub_checkpoint_dir()
        candidates = [cache / name for name in spec.file_names]
    for candidate in candidates:
        if candidate.is_file():
            verify_weights(spec, candidate)
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"{spec.description}: weights file {' or '.join(spec.file_names)} not found. "
        f"Searched: {searched}. Download it from {spec.url} ({spec.checksum_text()}) and put it in "
        f"{hub_checkpoint_dir()} (set TORCH_HOME to move that cache) or pass its path explicitly. "
        "No random weights are substituted."
    )


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a tensor state dict on CPU with ``weights_only=True`` (no arbitrary pickles)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return state

"""Fetch and verify every pretrained weights file freqlat can use.

The table is collected from the packages themselves, so that it names the same files, URLs,
checksums and cache folders their loaders read, and every check goes through the one verifier
the loaders use (``freqlat.metrics.weights``):

- LPIPS trunks (torchvision AlexNet / VGG16 / SqueezeNet 1.1): ``freqlat.metrics.perceptual``,
  into the torch hub cache (``$TORCH_HOME/hub/checkpoints``). torchvision publishes only the
  first 8 hex digits of each sha256, in the file name; that prefix is what gets checked.
- LPIPS linear layers: shipped inside the ``lpips==0.1.4`` wheel, nothing to download; their
  sha256 (pinned in ``freqlat.metrics.perceptual``) is verified.
- FID Inception v3, torch-fidelity's and pytorch-fid's file (``freqlat.metrics.inception``),
  into the torch hub cache, checked against the full sha256 pinned there.
- DINOv2 ViT-L/14 for VA-VAE's and FA-VAE's VF loss (timm's pretrained config, loaded by
  ``freqlat.tokenizers.losses.load_foundation_model``), into ``$FREQLAT_WEIGHTS`` or
  ``~/.cache/freqlat``. No sha256 is published.
- The official tokenizer checkpoints (``freqlat.tokenizers.OFFICIAL_CHECKPOINTS``), into
  ``$FREQLAT_CACHE/tokenizers`` (``~/.cache/freqlat/tokenizers``). No sha256 is published.
- The released LightningDiT-XL/1 checkpoints (64 and 800 epochs) and VA-VAE latent statistics
  (``freqlat.generators.lightningdit_official``), into ``$FREQLAT_CACHE/generators``. No sha256
  is published.

A file already present is verified first: one that fails says so (its sha256 and the expected
one) and is downloaded again. A download goes to a temporary file next to the target, has an
overall deadline per file (``--deadline``; a connection that stalls gives up after
``--stall-timeout``), prints its progress, is checked (the sha256 or its published prefix; where
none is published, that it is a torch checkpoint and not an HTML page), and only then renamed
into place. Without a network every file fails with one line.

    uv run --all-packages python tools/fetch_weights.py list
    uv run --all-packages python tools/fetch_weights.py verify [NAME ...]
    uv run --all-packages python tools/fetch_weights.py fetch NAME [NAME ...] | all [--force]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import re
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from freqlat.generators.lightningdit_official import LATENT_STATS as LIGHTNINGDIT_LATENT_STATS
from freqlat.generators.lightningdit_official import RELEASES as LIGHTNINGDIT_RELEASES
from freqlat.metrics.inception import INCEPTION_WEIGHTS
from freqlat.metrics.perceptual import (
    LINEAR_WEIGHTS_SHA256,
    TRUNK_WEIGHTS,
    linear_weights_path,
    linear_weights_spec,
)
from freqlat.metrics.weights import WeightsFile, cached_sha256, hub_checkpoint_dir, sha256_mismatch
from freqlat.tokenizers import OFFICIAL_CHECKPOINTS
from freqlat.tokenizers.losses.vf import DINOV2_VITL14, DINOV2_WEIGHTS, default_weights_dirs
from freqlat.tokenizers.official import default_cache_dir

NOT_PUBLISHED = "sha256 not published"
# A torch checkpoint is a zip archive (torch >= 1.6) or a legacy pickle (protocol 2+).
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")
CHUNK = 1 << 20
DEADLINE_S = 1800.0
STALL_TIMEOUT_S = 30.0
PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class WeightsEntry:
    """One weights file: where it goes, where it comes from, and what it is checked against.

    ``spec`` is the loaders' own description of the file (its checksum facts); ``url`` is this
    file's download URL, None for files that ship inside an installed package.
    """

    name: str
    target: Path
    url: str | None
    spec: WeightsFile

    @property
    def description(self) -> str:
        """What the file is, in words."""
        return self.spec.description

    def checksum_text(self) -> str:
        """What can be checked, in words."""
        return self.spec.checksum_text()


@dataclass(frozen=True)
class Outcome:
    """Result of verifying or fetching one entry: ``ok`` False means a problem to report."""

    name: str
    ok: bool
    message: str


def _direct_download_url(url: str) -> str:
    """Dropbox share links (``dl=0``) serve an HTML page; ``dl=1`` serves the file itself."""
    if "dropbox.com" in url:
        return re.sub(r"([?&])dl=0\b", r"\1dl=1", url)
    return url


def _inception_urls() -> dict[str, str]:
    """URL of each FID Inception file name, taken from the metrics package's description."""
    urls = re.findall(r"https://\S+", INCEPTION_WEIGHTS.url)
    by_name = {url.rsplit("/", 1)[-1]: url for url in urls}
    missing = [name for name in INCEPTION_WEIGHTS.file_names if name not in by_name]
    if missing:
        raise ValueError(f"no URL for Inception file(s) {missing} in {INCEPTION_WEIGHTS.url!r}")
    return {name: by_name[name] for name in INCEPTION_WEIGHTS.file_names}


def _dinov2_url() -> str:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(DINOV2_VITL14)
    if cfg is None or not cfg.url:
        raise ValueError(f"timm has no download URL for {DINOV2_VITL14}")
    return cfg.url


def weights_table() -> list[WeightsEntry]:
    """Every weights file the project can use, with target paths from the current environment."""
    hub = hub_checkpoint_dir()
    entries: list[WeightsEntry] = []
    for net, spec in TRUNK_WEIGHTS.items():
        entries.append(WeightsEntry(f"lpips-trunk-{net}", hub / spec.file_names[0], spec.url, spec))
    for version, net in sorted(LINEAR_WEIGHTS_SHA256):
        entries.append(
            WeightsEntry(
                f"lpips-linear-v{version}-{net}",
                Path(linear_weights_path(net, version)),
                None,
                linear_weights_spec(net, version),
            )
        )
    for file_name, url in _inception_urls().items():
        origin = url.split("/")[4]  # the GitHub repository that releases the file
        spec = replace(
            INCEPTION_WEIGHTS,
            description=f"{INCEPTION_WEIGHTS.description}, {origin}'s file",
            file_names=(file_name,),
            url=url,
        )
        entries.append(WeightsEntry(f"fid-inception-{origin}", hub / file_name, url, spec))
    dinov2_url = _dinov2_url()
    file_name = dinov2_url.rsplit("/", 1)[-1]
    entries.append(
        WeightsEntry(
            "dinov2-vitl14",
            default_weights_dirs()[0] / file_name,
            dinov2_url,
            replace(
                DINOV2_WEIGHTS,
                file_names=(file_name,),
                sha256_note=f"{DINOV2_WEIGHTS.sha256_note}; URL from timm's config {DINOV2_VITL14}",
            ),
        )
    )
    releases = [
        (f"tokenizer-{preset}", "tokenizers", info) for preset, info in OFFICIAL_CHECKPOINTS.items()
    ]
    releases += [
        (f"lightningdit-{name}", "generators", info)
        for name, info in [
            *LIGHTNINGDIT_RELEASES.items(),
            ("latent-stats", LIGHTNINGDIT_LATENT_STATS),
        ]
    ]
    for name, family, info in releases:
        url = _direct_download_url(info.url)
        spec = WeightsFile(
            f"official {info.preset} {info.filename}",
            (info.filename,),
            url,
            sha256_note=f"from {info.source}",
        )
        entries.append(WeightsEntry(name, default_cache_dir(family) / info.filename, url, spec))
    return entries


def select_entries(entries: Sequence[WeightsEntry], names: Sequence[str]) -> list[WeightsEntry]:
    """The entries named (``all`` or no name: every entry); an unknown name is a ValueError."""
    if not names or list(names) == ["all"]:
        return list(entries)
    by_name = {entry.name: entry for entry in entries}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(f"unknown weights {unknown}; known: {sorted(by_name)} or 'all'")
    return [by_name[name] for name in names]


def check_file(entry: WeightsEntry, path: Path, digest: str | None = None) -> Outcome:
    """Check ``path`` against what ``entry`` publishes; ``digest`` is its sha256 if known."""
    digest = digest or cached_sha256(path)
    problem = sha256_mismatch(entry.spec, digest)
    if problem is not None:
        return Outcome(entry.name, False, f"{path} failed verification: {problem}")
    if entry.spec.sha256:
        return Outcome(entry.name, True, "sha256 ok")
    if entry.spec.sha256_prefix:
        return Outcome(entry.name, True, f"sha256 prefix {entry.spec.sha256_prefix} ok")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if entry.target.suffix in {".pt", ".pth", ".ckpt"} and not head.startswith(CHECKPOINT_MAGIC):
        return Outcome(
            entry.name, False, f"{path} is not a torch checkpoint (starts with {head!r})"
        )
    return Outcome(entry.name, True, f"present, {NOT_PUBLISHED} (sha256 {digest})")


def verify_entry(entry: WeightsEntry) -> Outcome:
    """Verify the file at the entry's target; a missing file is reported, not an error."""
    if not entry.target.is_file():
        return Outcome(entry.name, True, f"missing: {entry.target}")
    return check_file(entry, entry.target)


class DeadlineExceeded(OSError):
    """The whole download of one file took longer than its deadline."""


@dataclass
class _Transfer:
    """State shared by a download thread and the caller that waits for it."""

    received: int = 0
    total: int | None = None
    digest: str | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)


def _stream(url: str, handle, transfer: _Transfer, stall_timeout: float) -> None:
    """Download ``url`` into ``handle`` (then closed), recording progress and the sha256."""
    try:
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": "freqlat-fetch-weights"})
        with urllib.request.urlopen(request, timeout=stall_timeout) as response:
            length = response.headers.get("Content-Length") if response.headers else None
            transfer.total = int(length) if length and length.isdigit() else None
            read = getattr(response, "read1", response.read)  # returns as soon as data arrives
            while not transfer.cancel.is_set():
                chunk = read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                handle.write(chunk)
                transfer.received += len(chunk)
        if not transfer.cancel.is_set():
            handle.flush()
            os.fsync(handle.fileno())
            transfer.digest = digest.hexdigest()
    except BaseException as exc:  # handed to the waiting caller, which reports it
        transfer.error = exc
    finally:
        handle.close()
        transfer.done.set()


def _progress_text(name: str, transfer: _Transfer, elapsed: float) -> str:
    mib = transfer.received / 2**20
    rate = mib / elapsed if elapsed > 0 else 0.0
    if transfer.total:
        total = transfer.total / 2**20
        done = f"{mib:.1f} of {total:.1f} MiB ({100 * transfer.received / transfer.total:.0f}%)"
    else:
        done = f"{mib:.1f} MiB"
    return f"{name}: {done} after {elapsed:.0f} s, {rate:.1f} MiB/s"


def _download(
    entry: WeightsEntry,
    handle,
    *,
    deadline: float,
    stall_timeout: float,
    progress_every: float,
    progress: Callable[[str], None],
) -> str:
    """Stream the entry's URL into ``handle`` within ``deadline`` seconds; return its sha256.

    The transfer runs in a daemon thread so that the deadline also bounds what no socket
    timeout does (name resolution, a server that trickles bytes); on expiry the thread is told
    to stop and the open temporary file is left to it (the caller removes its name).
    """
    transfer = _Transfer()
    worker = threading.Thread(
        target=_stream, args=(entry.url, handle, transfer, stall_timeout), daemon=True
    )
    start = time.monotonic()
    worker.start()
    while True:
        elapsed = time.monotonic() - start
        wait = min(progress_every, deadline - elapsed)
        if wait <= 0:
            transfer.cancel.set()
            raise DeadlineExceeded(
                f"no complete download within the {deadline:g} s deadline "
                f"({transfer.received} bytes received)"
            )
        if transfer.done.wait(wait):
            break
        progress(_progress_text(entry.name, transfer, time.monotonic() - start))
    if transfer.error is not None:
        raise transfer.error
    return transfer.digest


def fetch_entry(
    entry: WeightsEntry,
    *,
    force: bool = False,
    deadline: float = DEADLINE_S,
    stall_timeout: float = STALL_TIMEOUT_S,
    progress_every: float = PROGRESS_EVERY_S,
    progress: Callable[[str], None] = lambda line: None,
) -> Outcome:
    """Download ``entry`` to a temp file beside its target, verify it, then rename it into place.

    A present file that verifies is kept unless ``force``; one that fails verification is
    reported as such (with both hashes) and downloaded again. Each file has ``deadline``
    seconds in all; ``progress`` receives a line every ``progress_every`` seconds. Network and
    checksum failures are returned as an Outcome with a one-line message; the target is never
    left half-written.
    """
    if entry.url is None:
        if not entry.target.is_file():
            return Outcome(entry.name, False, f"missing {entry.target}: install lpips==0.1.4")
        return check_file(entry, entry.target)
    present_problem = ""
    if entry.target.is_file() and not force:
        outcome = check_file(entry, entry.target)
        if outcome.ok:
            return Outcome(entry.name, True, f"already present ({outcome.message})")
        present_problem = outcome.message
        progress(f"{entry.name}: {present_problem}; downloading it again")
    try:
        entry.target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return Outcome(entry.name, False, f"cannot create {entry.target.parent}: {exc}")
    descriptor, temp_name = tempfile.mkstemp(
        dir=entry.target.parent, prefix=f".{entry.target.name}.", suffix=".part"
    )
    temp = Path(temp_name)
    before = f"{present_problem}; " if present_problem else ""
    try:
        progress(f"{entry.name}: downloading {entry.url} (deadline {deadline:g} s)")
        digest = _download(
            entry,
            os.fdopen(descriptor, "wb"),
            deadline=deadline,
            stall_timeout=stall_timeout,
            progress_every=progress_every,
            progress=progress,
        )
        outcome = check_file(entry, temp, digest)
        if not outcome.ok:
            problem = outcome.message.replace(str(temp), "the download")
            return Outcome(entry.name, False, f"{before}downloaded from {entry.url}: {problem}")
        os.replace(temp, entry.target)
        message = f"fetched to {entry.target} ({outcome.message})"
        if present_problem:
            message += f"; it replaces a file that did not pass: {present_problem}"
        return Outcome(entry.name, True, message)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return Outcome(entry.name, False, f"{before}download failed from {entry.url}: {reason}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def format_table(entries: Sequence[WeightsEntry]) -> str:
    """A markdown table of the entries: name, what it is, target path, URL, checksum."""
    lines = ["| name | file | target | url | checksum |", "| --- | --- | --- | --- | --- |"]
    for entry in entries:
        url = entry.url or f"(ships in an installed package: {entry.spec.url})"
        lines.append(
            f"| {entry.name} | {entry.description} | {entry.target} | {url} "
            f"| {entry.checksum_text()} |"
        )
    return "\n".join(lines)


def _report(outcomes: Sequence[Outcome], echo: Callable[[str], None]) -> int:
    for outcome in outcomes:
        echo(f"{outcome.name}: {'' if outcome.ok else 'FAILED: '}{outcome.message}")
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if any file failed)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="print the table of weights files and their target paths")
    verify = commands.add_parser("verify", help="check the files that are present")
    verify.add_argument("names", nargs="*", help="entries to check (default: all)")
    fetch = commands.add_parser("fetch", help="download, verify and install files")
    fetch.add_argument("names", nargs="+", help="entry names, or 'all'")
    fetch.add_argument("--force", action="store_true", help="download even if a good file exists")
    fetch.add_argument(
        "--deadline",
        type=float,
        default=DEADLINE_S,
        help=f"seconds each file may take in all (default {DEADLINE_S:g})",
    )
    fetch.add_argument(
        "--stall-timeout",
        type=float,
        default=STALL_TIMEOUT_S,
        help=f"give up on a connection silent for this long (default {STALL_TIMEOUT_S:g} s)",
    )
    fetch.add_argument(
        "--progress-every",
        type=float,
        default=PROGRESS_EVERY_S,
        help=f"seconds between progress lines on stderr (default {PROGRESS_EVERY_S:g})",
    )
    args = parser.parse_args(argv)
    if args.command == "fetch":
        for option in ("deadline", "stall_timeout", "progress_every"):
            if not getattr(args, option) > 0:
                parser.error(f"--{option.replace('_', '-')} must be positive")

    entries = weights_table()
    if args.command == "list":
        print(format_table(entries))
        return 0
    try:
        selected = select_entries(entries, args.names)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "verify":
        return _report([verify_entry(entry) for entry in selected], print)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    status = 0
    for entry in selected:
        outcome = fetch_entry(
            entry,
            force=args.force,
            deadline=args.deadline,
            stall_timeout=args.stall_timeout,
            progress_every=args.progress_every,
            progress=progress,
        )
        status |= _report([outcome], print)
        sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Fetch and verify every pretrained weights file freqlat can use.

The table is collected from the packages themselves, so that it names the same files, URLs and
cache folders their loaders read:

- LPIPS trunks (torchvision AlexNet / VGG16 / SqueezeNet 1.1): ``freqlat.metrics.perceptual``,
  into the torch hub cache (``$TORCH_HOME/hub/checkpoints``). torchvision publishes only the
  first 8 hex digits of each sha256, in the file name; that prefix is what gets checked.
- LPIPS linear layers: shipped inside the ``lpips==0.1.4`` wheel, nothing to download; their
  sha256 (pinned in ``freqlat.metrics.perceptual``) is verified.
- FID Inception v3, torch-fidelity's and pytorch-fid's file (``freqlat.metrics.inception``),
  into the torch hub cache. No sha256 is published for either.
- DINOv2 ViT-L/14 for VA-VAE's and FA-VAE's VF loss (timm's pretrained config, loaded by
  ``freqlat.tokenizers.losses.load_foundation_model``), into ``$FREQLAT_WEIGHTS`` or
  ``~/.cache/freqlat``. No sha256 is published.
- The official tokenizer checkpoints (``freqlat.tokenizers.OFFICIAL_CHECKPOINTS``), into
  ``$FREQLAT_CACHE/tokenizers`` (``~/.cache/freqlat/tokenizers``). No sha256 is published.
- The released LightningDiT-XL/1 checkpoints (64 and 800 epochs) and VA-VAE latent statistics
  (``freqlat.generators.lightningdit_official``), into ``$FREQLAT_CACHE/generators``. No sha256
  is published.

A download goes to a temporary file next to the target, is checked (the sha256 or its
published prefix; where none is published, that it is a torch checkpoint and not an HTML
page), and only then renamed into place. Without a network every file fails with one line.

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
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from freqlat.generators.lightningdit_official import LATENT_STATS as LIGHTNINGDIT_LATENT_STATS
from freqlat.generators.lightningdit_official import RELEASES as LIGHTNINGDIT_RELEASES
from freqlat.metrics.inception import INCEPTION_WEIGHTS
from freqlat.metrics.perceptual import LINEAR_WEIGHTS_SHA256, TRUNK_WEIGHTS, linear_weights_path
from freqlat.metrics.weights import hub_checkpoint_dir
from freqlat.tokenizers import OFFICIAL_CHECKPOINTS
from freqlat.tokenizers.losses.vf import DINOV2_VITL14, default_weights_dirs
from freqlat.tokenizers.official import default_cache_dir

NOT_PUBLISHED = "sha256 not published"
TORCHVISION_NAME = re.compile(r"-([0-9a-f]{8})\.pth$")
# A torch checkpoint is a zip archive (torch >= 1.6) or a legacy pickle (protocol 2+).
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")
CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsEntry:
    """One weights file: where it goes, where it comes from, and how it can be checked.

    ``sha256`` is the full published checksum, ``sha256_prefix`` a published prefix (torchvision
    file names); ``note`` says where the facts come from or why no checksum exists. ``url`` is
    None for files that ship inside an installed package.
    """

    name: str
    description: str
    target: Path
    url: str | None
    sha256: str | None = None
    sha256_prefix: str | None = None
    note: str = ""

    def checksum_text(self) -> str:
        """What can be checked, in words."""
        if self.sha256:
            return f"sha256 {self.sha256}"
        if self.sha256_prefix:
            return f"sha256 prefix {self.sha256_prefix} (full {NOT_PUBLISHED})"
        return NOT_PUBLISHED


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
        file_name = spec.file_names[0]
        prefix = TORCHVISION_NAME.search(file_name)
        entries.append(
            WeightsEntry(
                name=f"lpips-trunk-{net}",
                description=spec.description,
                target=hub / file_name,
                url=spec.url,
                sha256=spec.sha256,
                sha256_prefix=prefix.group(1) if prefix else None,
                note="torchvision publishes the sha256 prefix in the file name",
            )
        )
    for (version, net), sha256 in sorted(LINEAR_WEIGHTS_SHA256.items()):
        entries.append(
            WeightsEntry(
                name=f"lpips-linear-v{version}-{net}",
                description=f"LPIPS {net} linear layers v{version}",
                target=Path(linear_weights_path(net, version)),
                url=None,
                sha256=sha256,
                note="shipped in the lpips==0.1.4 wheel; reinstall lpips if missing",
            )
        )
    for file_name, url in _inception_urls().items():
        origin = url.split("/")[4]  # the GitHub repository that releases the file
        entries.append(
            WeightsEntry(
                name=f"fid-inception-{origin}",
                description=f"{INCEPTION_WEIGHTS.description}, {origin}'s file",
                target=hub / file_name,
                url=url,
                note=INCEPTION_WEIGHTS.sha256_note,
            )
        )
    dinov2_url = _dinov2_url()
    entries.append(
        WeightsEntry(
            name="dinov2-vitl14",
            description="DINOv2 ViT-L/14 (VF loss foundation model)",
            target=default_weights_dirs()[0] / dinov2_url.rsplit("/", 1)[-1],
            url=dinov2_url,
            note="URL from timm's pretrained config " + DINOV2_VITL14,
        )
    )
    for preset, info in OFFICIAL_CHECKPOINTS.items():
        entries.append(
            WeightsEntry(
                name=f"tokenizer-{preset}",
                description=f"official {preset} checkpoint",
                target=default_cache_dir() / info.filename,
                url=_direct_download_url(info.url),
                note=f"from {info.source}",
            )
        )
    for name, info in [*LIGHTNINGDIT_RELEASES.items(), ("latent-stats", LIGHTNINGDIT_LATENT_STATS)]:
        entries.append(
            WeightsEntry(
                name=f"lightningdit-{name}",
                description=f"official LightningDiT {info.filename}",
                target=default_cache_dir("generators") / info.filename,
                url=_direct_download_url(info.url),
                note=f"from {info.source}",
            )
        )
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


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(entry: WeightsEntry, path: Path, digest: str | None = None) -> Outcome:
    """Check ``path`` against what ``entry`` publishes; ``digest`` is its sha256 if known."""
    digest = digest or file_sha256(path)
    if entry.sha256:
        if digest != entry.sha256:
            return Outcome(entry.name, False, f"sha256 mismatch: {digest}, expected {entry.sha256}")
        return Outcome(entry.name, True, "sha256 ok")
    if entry.sha256_prefix:
        if not digest.startswith(entry.sha256_prefix):
            return Outcome(
                entry.name,
                False,
                f"sha256 mismatch: {digest} does not start with {entry.sha256_prefix}",
            )
        return Outcome(entry.name, True, f"sha256 prefix {entry.sha256_prefix} ok")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if entry.target.suffix in {".pt", ".pth", ".ckpt"} and not head.startswith(CHECKPOINT_MAGIC):
        return Outcome(entry.name, False, f"not a torch checkpoint (starts with {head!r})")
    return Outcome(entry.name, True, f"present, {NOT_PUBLISHED} (sha256 {digest})")


def verify_entry(entry: WeightsEntry) -> Outcome:
    """Verify the file at the entry's target; a missing file is reported, not an error."""
    if not entry.target.is_file():
        return Outcome(entry.name, True, f"missing: {entry.target}")
    return check_file(entry, entry.target)


def _download(url: str, handle, timeout: float) -> str:
    """Stream ``url`` into the open binary ``handle``; return the sha256 of what was written."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "freqlat-fetch-weights"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        for chunk in iter(lambda: response.read(CHUNK), b""):
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def fetch_entry(entry: WeightsEntry, *, force: bool = False, timeout: float = 60.0) -> Outcome:
    """Download ``entry`` to a temp file beside its target, verify it, then rename it into place.

    A present file that verifies is kept unless ``force``. Network and checksum failures are
    returned as an Outcome with a one-line message; the target is never left half-written.
    """
    if entry.url is None:
        if not entry.target.is_file():
            return Outcome(entry.name, False, f"missing {entry.target}: {entry.note}")
        return check_file(entry, entry.target)
    if entry.target.is_file() and not force:
        outcome = check_file(entry, entry.target)
        if outcome.ok:
            return Outcome(entry.name, True, f"already present ({outcome.message})")
    try:
        entry.target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return Outcome(entry.name, False, f"cannot create {entry.target.parent}: {exc}")
    descriptor, temp_name = tempfile.mkstemp(
        dir=entry.target.parent, prefix=f".{entry.target.name}.", suffix=".part"
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            digest = _download(entry.url, handle, timeout)
            handle.flush()
            os.fsync(handle.fileno())
        outcome = check_file(entry, temp, digest)
        if not outcome.ok:
            return Outcome(entry.name, False, f"downloaded from {entry.url}: {outcome.message}")
        os.replace(temp, entry.target)
        return Outcome(entry.name, True, f"fetched to {entry.target} ({outcome.message})")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return Outcome(entry.name, False, f"download failed from {entry.url}: {reason}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def format_table(entries: Sequence[WeightsEntry]) -> str:
    """A markdown table of the entries: name, target path, URL, checksum, note."""
    lines = ["| name | target | url | checksum | note |", "| --- | --- | --- | --- | --- |"]
    for entry in entries:
        url = entry.url or "(ships in an installed package)"
        lines.append(
            f"| {entry.name} | {entry.target} | {url} | {entry.checksum_text()} | {entry.note} |"
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
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds per network read")
    args = parser.parse_args(argv)

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
    status = 0
    for entry in selected:
        status |= _report([fetch_entry(entry, force=args.force, timeout=args.timeout)], print)
        sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())

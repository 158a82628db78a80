"""tools/fetch_weights.py: the table matches the packages, and fetch verifies before installing.

No test touches the network: downloads come from file:// URLs of local temp files, from an HTTP
server on 127.0.0.1 run by the test, or from a monkeypatched ``urlopen``.
"""

import hashlib
import http.server
import re
import threading
import time
import urllib.error
from dataclasses import replace
from pathlib import Path

import pytest

from freqlat.metrics.inception import INCEPTION_WEIGHTS
from freqlat.metrics.perceptual import LINEAR_WEIGHTS_SHA256
from freqlat.metrics.weights import WeightsFile
from freqlat.tokenizers import OFFICIAL_CHECKPOINTS

CHECKPOINT_BYTES = b"PK\x03\x04" + b"fake torch zip payload" * 10


@pytest.fixture
def tool(load_tool):
    return load_tool("fetch_weights")


def _source(tmp_path: Path, payload: bytes = CHECKPOINT_BYTES) -> Path:
    source = tmp_path / "server" / "weights.pth"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(payload)
    return source


def _entry(tool, tmp_path, url, **checks):
    return tool.WeightsEntry(
        name="test-weights",
        target=tmp_path / "cache" / "weights.pth",
        url=url,
        spec=WeightsFile("test file", ("weights.pth",), url, **checks),
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_table_lists_every_weights_family_with_cache_targets(tool, tmp_path):
    entries = {entry.name: entry for entry in tool.weights_table()}
    expected = {
        "lpips-trunk-alex",
        "lpips-trunk-vgg",
        "lpips-trunk-squeeze",
        "fid-inception-torch-fidelity",
        "fid-inception-pytorch-fid",
        "dinov2-vitl14",
        *(f"lpips-linear-v{version}-{net}" for version, net in LINEAR_WEIGHTS_SHA256),
        *(f"tokenizer-{preset}" for preset in OFFICIAL_CHECKPOINTS),
        "lightningdit-64ep",
        "lightningdit-800ep",
        "lightningdit-latent-stats",
    }
    assert set(entries) == expected
    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    assert entries["lpips-trunk-vgg"].target == hub / "vgg16-397923af.pth"
    assert (
        entries["fid-inception-pytorch-fid"].target == hub / "pt_inception-2015-12-05-6726825d.pth"
    )
    assert entries["fid-inception-torch-fidelity"].url.endswith(
        "/weights-inception-2015-12-05-6726825d.pth"
    )
    assert entries["dinov2-vitl14"].target.parent == tmp_path / "freqlat-weights"
    for preset, info in OFFICIAL_CHECKPOINTS.items():
        target = entries[f"tokenizer-{preset}"].target
        assert target == tmp_path / "freqlat-cache" / "tokenizers" / info.filename
    generators = tmp_path / "freqlat-cache" / "generators"
    assert (
        entries["lightningdit-800ep"].target == generators / "lightningdit-xl-imagenet256-800ep.pt"
    )
    assert entries["lightningdit-latent-stats"].url.endswith("/latents_stats.pt")
    for entry in entries.values():
        assert entry.url is None or entry.url.startswith("https://")


def test_the_table_checks_what_the_loaders_check(tool):
    entries = tool.weights_table()
    full = {entry.name: entry.spec.sha256 for entry in entries if entry.spec.sha256}
    assert full == {
        **{
            f"lpips-linear-v{version}-{net}": sha
            for (version, net), sha in LINEAR_WEIGHTS_SHA256.items()
        },
        "fid-inception-torch-fidelity": INCEPTION_WEIGHTS.sha256,
        "fid-inception-pytorch-fid": INCEPTION_WEIGHTS.sha256,
    }
    prefixes = {
        entry.name: entry.spec.sha256_prefix
        for entry in entries
        if entry.spec.sha256_prefix and not entry.spec.sha256
    }
    assert prefixes == {
        "lpips-trunk-alex": "7be5be79",
        "lpips-trunk-vgg": "397923af",
        "lpips-trunk-squeeze": "b8a52dc0",
    }
    unchecked = [e for e in entries if not e.spec.published]
    assert {e.name for e in unchecked} == {
        "dinov2-vitl14",
        *(f"tokenizer-{preset}" for preset in OFFICIAL_CHECKPOINTS),
        "lightningdit-64ep",
        "lightningdit-800ep",
        "lightningdit-latent-stats",
    }
    assert all(e.checksum_text().startswith("sha256 not published") for e in unchecked)


def test_dropbox_share_links_become_direct_downloads(tool):
    entry = next(e for e in tool.weights_table() if e.name == "tokenizer-kl-vae-f16d16")
    assert "dl=1" in entry.url and "dl=0" not in entry.url


def test_installed_lpips_linear_layers_verify(tool):
    outcomes = [tool.verify_entry(e) for e in tool.weights_table() if e.url is None]
    assert len(outcomes) == len(LINEAR_WEIGHTS_SHA256)
    assert all(o.ok and o.message == "sha256 ok" for o in outcomes)


def test_fetch_downloads_verifies_and_installs(tool, tmp_path):
    source = _source(tmp_path)
    entry = _entry(
        tool, tmp_path, source.as_uri(), sha256=hashlib.sha256(CHECKPOINT_BYTES).hexdigest()
    )
    outcome = tool.fetch_entry(entry)
    assert outcome.ok, outcome.message
    assert entry.target.read_bytes() == CHECKPOINT_BYTES
    assert _leftovers(entry.target.parent) == []
    again = tool.fetch_entry(replace(entry, url=(tmp_path / "gone.pth").as_uri()))
    assert again.ok and again.message.startswith("already present")
    assert tool.verify_entry(entry).message == "sha256 ok"


def test_checksum_mismatch_leaves_no_file_behind(tool, tmp_path):
    source = _source(tmp_path)
    entry = _entry(tool, tmp_path, source.as_uri(), sha256="0" * 64)
    outcome = tool.fetch_entry(entry)
    assert not outcome.ok
    assert "failed verification" in outcome.message and "\n" not in outcome.message
    assert hashlib.sha256(CHECKPOINT_BYTES).hexdigest() in outcome.message
    assert not entry.target.exists()
    assert _leftovers(entry.target.parent) == []


def test_sha256_prefix_from_the_file_name_is_checked(tool, tmp_path):
    source = _source(tmp_path)
    digest = hashlib.sha256(CHECKPOINT_BYTES).hexdigest()
    good = _entry(tool, tmp_path, source.as_uri(), sha256_prefix=digest[:8])
    assert tool.fetch_entry(good).ok
    bad = replace(
        good, target=tmp_path / "other" / "w.pth", spec=replace(good.spec, sha256_prefix="deadbeef")
    )
    outcome = tool.fetch_entry(bad)
    assert not outcome.ok and "expected one starting with deadbeef" in outcome.message
    assert not bad.target.exists()


def test_an_html_page_is_not_accepted_as_an_unchecksummed_checkpoint(tool, tmp_path):
    source = _source(tmp_path, b"<!DOCTYPE html><html>sign in</html>")
    entry = _entry(tool, tmp_path, source.as_uri())
    outcome = tool.fetch_entry(entry)
    assert not outcome.ok and "not a torch checkpoint" in outcome.message
    assert not entry.target.exists()


def test_unreachable_url_is_a_one_line_failure(tool, tmp_path):
    entry = _entry(tool, tmp_path, (tmp_path / "missing.pth").as_uri())
    outcome = tool.fetch_entry(entry)
    assert not outcome.ok and outcome.message.startswith("download failed from file://")
    assert not entry.target.exists()
    assert _leftovers(entry.target.parent) == []


def test_no_network_fails_cleanly_per_file(tool, tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tool.urllib.request, "urlopen", offline)
    status = tool.main(["fetch", "lpips-trunk-vgg", "dinov2-vitl14", "tokenizer-ms-vq-vae"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert status == 1
    assert len(lines) == 3
    assert all("FAILED: download failed" in line for line in lines)
    assert "Traceback" not in captured.out + captured.err


def test_list_verify_and_unknown_names_from_the_command_line(tool, capsys):
    assert tool.main(["list"]) == 0
    assert "tokenizer-ms-vq-vae" in capsys.readouterr().out
    assert tool.main(["verify"]) == 0  # missing files are reported, not failures
    assert "missing:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["fetch", "no-such-weights"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--help"])
    assert exit_info.value.code == 0


def test_a_bad_file_already_present_is_reported_as_failing_verification(tool, tmp_path):
    expected = hashlib.sha256(CHECKPOINT_BYTES).hexdigest()
    entry = _entry(tool, tmp_path, (tmp_path / "unreachable.pth").as_uri(), sha256=expected)
    entry.target.parent.mkdir(parents=True)
    entry.target.write_bytes(b"PK\x03\x04 an older, damaged copy")
    actual = hashlib.sha256(entry.target.read_bytes()).hexdigest()
    lines = []
    outcome = tool.fetch_entry(entry, progress=lines.append)
    assert not outcome.ok and "\n" not in outcome.message
    assert outcome.message.startswith(f"{entry.target} failed verification")
    assert actual in outcome.message and expected in outcome.message
    assert "download failed from file://" in outcome.message  # and why it was not replaced
    assert any("failed verification" in line and "again" in line for line in lines)
    verified = tool.verify_entry(entry)
    assert not verified.ok and "failed verification" in verified.message
    assert actual in verified.message and expected in verified.message

    fixed = tool.fetch_entry(replace(entry, url=_source(tmp_path).as_uri()))
    assert fixed.ok and "did not pass" in fixed.message
    assert entry.target.read_bytes() == CHECKPOINT_BYTES


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``payload`` in ``chunks`` pieces with ``pause`` seconds between them."""

    payload = b""
    chunks = 1
    pause = 0.0

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        size = -(-len(self.payload) // self.chunks)
        try:
            for start in range(0, len(self.payload), size):
                self.wfile.write(self.payload[start : start + size])
                self.wfile.flush()
                time.sleep(self.pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up: what the deadline test wants

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """Start a local HTTP server for one payload: ``serve(payload, chunks, pause) -> url``."""
    servers = []

    def start(payload: bytes, chunks: int, pause: float) -> str:
        attributes = {"payload": payload, "chunks": chunks, "pause": pause}
        handler = type("Handler", (_TrickleHandler,), attributes)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/weights.pth"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_progress_is_printed_while_a_file_downloads(tool, tmp_path, serve):
    payload = CHECKPOINT_BYTES * 50
    url = serve(payload, chunks=6, pause=0.1)
    entry = _entry(tool, tmp_path, url, sha256=hashlib.sha256(payload).hexdigest())
    lines = []
    outcome = tool.fetch_entry(entry, progress_every=0.05, progress=lines.append)
    assert outcome.ok, outcome.message
    assert entry.target.read_bytes() == payload
    assert lines[0].startswith("test-weights: downloading http://127.0.0.1")
    assert any(re.search(r"test-weights: [\d.]+ of [\d.]+ MiB \(\d+%\)", line) for line in lines)


def test_a_download_that_never_finishes_stops_at_the_per_file_deadline(tool, tmp_path, serve):
    # one byte every 50 ms: every read succeeds well within the stall timeout, so only an
    # overall deadline can end it (the whole file would take days)
    url = serve(b"PK\x03\x04" + bytes(4_000_000), chunks=4_000_004, pause=0.05)
    entry = _entry(tool, tmp_path, url)
    start = time.monotonic()
    outcome = tool.fetch_entry(entry, deadline=1.0, stall_timeout=30.0, progress_every=0.2)
    assert time.monotonic() - start < 15  # returned instead of waiting for the trickle
    assert not outcome.ok and "deadline" in outcome.message and "\n" not in outcome.message
    assert not entry.target.exists() and _leftovers(entry.target.parent) == []


def test_a_hung_connection_stops_at_the_per_file_deadline(tool, tmp_path, monkeypatch):
    # name resolution that never answers is not bound by any socket timeout
    release = threading.Event()
    monkeypatch.setattr(tool.urllib.request, "urlopen", lambda *a, **k: release.wait(60))
    entry = _entry(tool, tmp_path, "https://example.invalid/weights.pth")
    try:
        outcome = tool.fetch_entry(entry, deadline=0.5)
    finally:
        release.set()
    assert not outcome.ok and "0.5 s deadline" in outcome.message
    assert _leftovers(entry.target.parent) == []


def test_deadline_and_stall_options_are_checked_on_the_command_line(tool):
    for option in ("--deadline", "--stall-timeout", "--progress-every"):
        with pytest.raises(SystemExit) as exit_info:
            tool.main(["fetch", "lpips-trunk-vgg", option, "0"])
        assert exit_info.value.code == 2

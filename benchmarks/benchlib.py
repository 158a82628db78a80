"""Helpers shared by the benchmarks/bench_*.py scripts: device sync, device name, table output,
the pieces of a parity check between two implementations (exact fp32, output differences), and
running ``freqlat-train`` as a command on generated JPEGs and reading the throughput it logged."""

from __future__ import annotations

import datetime
import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on a CPU), so host timers see it finish."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's architecture and thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.machine()}, {torch.get_num_threads()} thread(s))"


def emit(table: str, append: str | Path | None) -> None:
    """Print a markdown result table and, when asked, append it to a results file."""
    print(table)
    if append:
        with open(append, "a") as f:
            f.write("\n" + table)


@contextmanager
def exact_fp32():
    """Turn TF32 off for matmuls and convolutions inside the block (CUDA), so fp32 is fp32.

    Parity checks between two implementations run in here: with TF32 on, each may pick other
    kernels and their outputs differ by ~1e-3 relative for reasons that are not theirs.
    """
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@dataclass(frozen=True)
class TensorDiff:
    """How far one named output of ours is from the reference's.

    For floating outputs ``max_abs`` is max |ours - reference| and ``relative`` divides it by
    max |reference|; for integer outputs (token indices) both count the entries that differ,
    ``relative`` as a fraction of all entries. A shape mismatch gives infinite distances.
    """

    name: str
    max_abs: float
    relative: float
    integer: bool
    numel: int

    def within(self, rtol: float, index_tol: float) -> bool:
        """True when the difference is inside the tolerance of its kind."""
        return self.relative <= (index_tol if self.integer else rtol)

    def __str__(self) -> str:
        if self.integer:
            return f"{self.name} {int(self.max_abs)}/{self.numel} differ"
        return f"{self.name} {self.max_abs:.2g} (rel {self.relative:.2g})"


def tensor_diffs(ours: dict[str, Tensor], reference: dict[str, Tensor]) -> list[TensorDiff]:
    """One :class:`TensorDiff` per output name; both dicts must name the same outputs."""
    if set(ours) != set(reference):
        raise ValueError(
            f"outputs to compare differ in names: ours {sorted(ours)}, reference {sorted(reference)}"
        )
    diffs = []
    for name, ref in reference.items():
        mine = ours[name]
        integer = not (ref.is_floating_point() or mine.is_floating_point())
        if mine.shape != ref.shape:
            diffs.append(TensorDiff(name, math.inf, math.inf, integer, ref.numel()))
        elif integer:
            differ = int((mine != ref).sum())
            diffs.append(TensorDiff(name, differ, differ / max(ref.numel(), 1), True, ref.numel()))
        else:
            max_abs = (mine.float() - ref.float()).abs().max().item()
            scale = ref.float().abs().max().item()
            relative = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
            diffs.append(TensorDiff(name, max_abs, relative, False, ref.numel()))
    return diffs


# Parity gate of a same-run comparison (exact fp32): max |ours - reference| / max |reference|
# for every floating output ...
PARITY_RTOL = 1e-3
# ... and the share of integer outputs (token indices) allowed to differ (near-ties).
INDEX_MISMATCH_TOL = 1e-3


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def precision_context(device: torch.device, precision: str):
    """bf16 or fp16 autocast on ``device`` for ``"bf16"`` / ``"fp16"``, nothing for ``"fp32"``."""
    if precision not in ("fp32", *AUTOCAST_DTYPES):
        raise ValueError(f"precision must be 'bf16', 'fp16' or 'fp32', got {precision!r}")
    if precision in AUTOCAST_DTYPES:
        return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])
    return nullcontext()


def throughput(fn, images: int, device: torch.device, iters: int, warmup: int = 2) -> float:
    """Images/s of ``fn`` (one call handles ``images`` images), after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return images * iters / (time.perf_counter() - start)


def throughput_and_peak(
    fn, images: int, device: torch.device, iters: int, warmup: int = 2, above_base: bool = True
) -> tuple[float, float | None]:
    """Images/s of ``fn`` and its peak CUDA memory in GiB (None on a CPU).

    ``above_base`` counts only what was allocated beyond the memory in use before the first call
    (the working memory of the call, not the resident weights); otherwise the whole peak.
    """
    sync(device)
    base = 0
    if device.type == "cuda":
        base = torch.cuda.memory_allocated(device) if above_base else 0
        torch.cuda.reset_peak_memory_stats(device)
    ips = throughput(fn, images, device, iters, warmup)
    if device.type != "cuda":
        return ips, None
    return ips, (torch.cuda.max_memory_allocated(device) - base) / 2**30


@dataclass(frozen=True)
class Phase:
    """One operation of a same-run comparison, on the same input for both implementations.

    ``ours``/``official`` are the timed calls; ``ours_outputs``/``official_outputs`` run them and
    name their results, for the difference at the timed precision; ``parity`` holds the
    exact-fp32 differences measured beforehand.
    """

    name: str
    images: int
    ours: Callable[[], object]
    official: Callable[[], object]
    ours_outputs: Callable[[], dict[str, Tensor]]
    official_outputs: Callable[[], dict[str, Tensor]]
    parity: list[TensorDiff]


@dataclass
class ComparisonRow:
    """One phase of one subject, ours against the official code, measured in the same run.

    ``parity`` holds the exact-fp32 differences and ``parity_ok`` whether they are inside the
    tolerance; ``timed_diff`` the differences at the timed precision (or why the official call
    failed there); ``official_error`` is set when the official call failed. ``parity_note`` is
    set instead of ``parity`` where no parity check ran in this run (it says why, and what
    stands in for it); the ratio is then printed as ungated.
    """

    subject: str
    measurement: str
    ours_ips: float
    official_ips: float | None
    ours_peak: float | None
    official_peak: float | None
    parity: list[TensorDiff]
    parity_ok: bool
    timed_diff: str
    official_error: str | None = None
    parity_note: str | None = None

    @property
    def speedup(self) -> float | None:
        """Our img/s over the official img/s; None unless parity holds and both ran."""
        if not self.parity_ok or self.official_ips is None:
            return None
        return self.ours_ips / self.official_ips


def _describe(error: Exception) -> str:
    first_line = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first_line}"


def diff_text(diffs: list[TensorDiff]) -> str:
    """The differences as one line: ``name max_abs (rel r), ...``."""
    return ", ".join(str(d) for d in diffs)


def time_phases(
    subject: str,
    phases: list[Phase],
    device: torch.device,
    precision: str,
    iters: int,
    warmup: int = 2,
    rtol: float = PARITY_RTOL,
    index_tol: float = INDEX_MISMATCH_TOL,
) -> list[ComparisonRow]:
    """Time each phase for ours and then the official code, under ``precision``, without grad.

    Before timing, both run once at the timed precision and their outputs are compared (on a
    CPU in fp32 that is the parity check itself, and is not repeated). An official call that
    raises a RuntimeError (VAR's quantiser under bf16 autocast) is reported in the row, not
    raised; the row then has no official throughput and no speed-up.
    """
    rows = []
    for phase in phases:
        official_error = None
        with torch.no_grad(), precision_context(device, precision):
            if precision == "fp32" and device.type == "cpu":
                timed_diff = diff_text(phase.parity)
            else:
                mine = phase.ours_outputs()
                try:
                    timed_diff = diff_text(tensor_diffs(mine, phase.official_outputs()))
                except RuntimeError as error:
                    official_error = _describe(error)
                    timed_diff = f"official fails: {official_error}"
                del mine
            ours_ips, ours_peak = throughput_and_peak(
                phase.ours, phase.images, device, iters, warmup
            )
            official_ips = official_peak = None
            if official_error is None:
                try:
                    official_ips, official_peak = throughput_and_peak(
                        phase.official, phase.images, device, iters, warmup
                    )
                except RuntimeError as error:
                    official_error = _describe(error)
        rows.append(
            ComparisonRow(
                subject=subject,
                measurement=f"{phase.name} {precision}",
                ours_ips=ours_ips,
                official_ips=official_ips,
                ours_peak=ours_peak,
                official_peak=official_peak,
                parity=phase.parity,
                parity_ok=all(d.within(rtol, index_tol) for d in phase.parity),
                timed_diff=timed_diff,
                official_error=official_error,
            )
        )
    return rows


@dataclass(frozen=True)
class TrainingStep:
    """One implementation's training step as the harness times it.

    ``make(precision)`` builds the step (with its own optimiser) and returns the call that runs
    one step on a fixed batch; ``model`` is put in train mode while it is timed.
    """

    model: torch.nn.Module
    make: Callable[[str], Callable[[], object]]


def time_training(
    step: TrainingStep, images: int, device: torch.device, precision: str, iters: int, warmup: int
) -> tuple[float, float | None]:
    """Images/s and peak GiB of a training step. The step runs once before the measurement, so
    the optimiser state is allocated outside the measured peak; eval mode is restored after."""
    step.model.train()
    try:
        run = step.make(precision)
        run()
        return throughput_and_peak(run, images, device, iters, warmup)
    finally:
        step.model.eval()


def training_row(
    subject: str,
    measurement: str,
    ours: TrainingStep,
    official: TrainingStep,
    images: int,
    device: torch.device,
    precision: str,
    iters: int,
    warmup: int,
    parity: list[TensorDiff],
    timed_diff: str,
    rtol: float = PARITY_RTOL,
    parity_note: str | None = None,
    ours_measured: tuple[float, float | None] | None = None,
) -> ComparisonRow:
    """Both training steps timed, ours first, as one row gated by ``parity`` (the exact-fp32
    differences of what the step computes: forward, loss), or by ``parity_note`` (why no check
    covers it; the ratio is then printed as ungated). ``ours_measured`` (img/s, peak) reuses a
    measurement of our step instead of timing it again. An official step that raises a
    RuntimeError is reported in the row. Training changes both models' weights: run it last."""
    ours_ips, ours_peak = ours_measured or time_training(
        ours, images, device, precision, iters, warmup
    )
    official_ips = official_peak = official_error = None
    try:
        official_ips, official_peak = time_training(
            official, images, device, precision, iters, warmup
        )
    except RuntimeError as error:
        official_error = _describe(error)
    return ComparisonRow(
        subject=subject,
        measurement=f"{measurement} {precision}",
        ours_ips=ours_ips,
        official_ips=official_ips,
        ours_peak=ours_peak,
        official_peak=official_peak,
        parity=parity,
        parity_ok=all(d.within(rtol, 0.0) for d in parity),
        timed_diff=timed_diff,
        official_error=official_error,
        parity_note=parity_note,
    )


def _rate(ips: float) -> str:
    return f"{ips:.1f}" if ips >= 10 else f"{ips:.3g}"


def _gib(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def comparison_table(rows: list[ComparisonRow], subject_header: str = "preset") -> list[str]:
    """Markdown table lines of a same-run comparison: img/s of both, the ratio (or why it is
    withheld), peak memory of both, the fp32 parity and the difference at the timed precision."""
    lines = [
        f"| {subject_header} | measurement | ours img/s | official img/s | ours/official | "
        "ours peak GiB | official peak GiB | fp32 parity (max abs diff) | "
        "diff at timed precision |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.speedup is not None:
            ratio = f"{row.speedup:.2f}x" + (" (ungated)" if row.parity_note else "")
        elif not row.parity_ok:
            ratio = "withheld: parity failed"
        else:
            ratio = "official failed"
        official = f"fails: {row.official_error}" if row.official_error else _rate(row.official_ips)
        if row.parity_note:
            parity = f"not checked: {row.parity_note}"
        else:
            parity = f"{diff_text(row.parity)} {'(ok)' if row.parity_ok else '(FAILED)'}"
        lines.append(
            f"| {row.subject} | {row.measurement} | {_rate(row.ours_ips)} | {_cell(official)} | "
            f"{ratio} | {_gib(row.ours_peak)} | {_gib(row.official_peak)} | {_cell(parity)} | "
            f"{_cell(row.timed_diff)} |"
        )
    return lines


def write_imagenet_like_jpegs(root: Path, count: int) -> None:
    """``count`` JPEGs of ImageNet's typical size (about 500 x 375) from scikit-image photos."""
    import numpy as np
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        photo = photos[i % len(photos)]
        height, width = min(375, photo.shape[0]), min(500, photo.shape[1])
        top = rng.integers(0, photo.shape[0] - height + 1)
        left = rng.integers(0, photo.shape[1] - width + 1)
        crop = photo[top : top + height, left : left + width]
        Image.fromarray(crop).save(root / f"{i:06d}.JPEG", quality=90)


def freqlat_train(command: list[str], overrides: dict[str, object]) -> None:
    """Run ``freqlat-train COMMAND --key value ...`` as a command (the benchmarks never import
    an app); a failure raises ``CalledProcessError``."""
    args = [sys.executable, "-m", "freqlat.train", *command]
    for key, value in overrides.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    subprocess.run(args, check=True)


def logged_throughput(run_dir: Path, step: int) -> dict[str, float]:
    """The ``time/*`` terms a ``freqlat-train`` run logged with its checkpoint of ``step``
    (with one log line at the end, the interval is every step of the start but the first)."""
    meta = run_dir / "checkpoints" / f"step_{step:09d}" / "meta.json"
    terms = json.loads(meta.read_text())["metadata"]["terms"]
    return {key: value for key, value in terms.items() if key.startswith("time/")}


def loop_against_bare_table(
    title: str, setting: str, bare_label: str, loop_label: str, bare: float, loop: dict[str, float]
) -> str:
    """The markdown table of a training loop's logged throughput against its bare step.

    ``setting`` is the line under the title (date, versions, sizes); ``loop`` the ``time/*``
    terms the loop logged (:func:`logged_throughput`).
    """
    ips = loop.get("time/images_per_s", float("nan"))
    wait = loop.get("time/data_wait_fraction", float("nan"))
    return "\n".join(
        [
            f"### {title}",
            "",
            f"{datetime.date.today()}, torch {torch.__version__}, {setting}",
            "",
            "| measurement | img/s per process | data wait | of bare step |",
            "| --- | --- | --- | --- |",
            f"| {bare_label} | {bare:.1f} | | 100% |",
            f"| {loop_label} | {ips:.1f} | {100 * wait:.1f}% | {100 * ips / bare:.0f}% |",
            "",
        ]
    )

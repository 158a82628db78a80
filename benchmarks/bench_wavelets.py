"""Benchmark: our one-level Haar DWT/IDWT against pytorch_wavelets on the same input.

Reports, per direction and dtype: ms per call, kernel time per call (CUDA kernels from the profiler
on a GPU; on a CPU the process CPU time on one thread, which other load on a shared machine barely
disturbs, unlike wall time), the bandwidth reached (bytes read + written
over kernel time) as a fraction of the device-to-device copy bandwidth measured in the same run, and
the speed-up over pytorch_wavelets. Parity is checked on the same input before timing.

    uv run --all-packages python benchmarks/bench_wavelets.py [--device cuda] [--batch 64] [--append benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time
import warnings

import torch
from benchlib import device_name, emit, sync

from freqlat.wavelets import haar_dwt2, haar_idwt2
from freqlat.wavelets._haar import BACKEND_ENV

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    from pytorch_wavelets import DWTForward, DWTInverse


def wall_ms(fn, device: torch.device, repeats: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean time of ``repeats`` calls, in ms.

    Wall time on a GPU; process CPU time on a CPU.
    """
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    fn()
    sync(device)
    samples = []
    for _ in range(rounds):
        start = clock()
        for _ in range(repeats):
            fn()
        sync(device)
        samples.append((clock() - start) / repeats * 1e3)
    return statistics.median(samples)


def kernel_ms(fn, device: torch.device, repeats: int) -> float | None:
    """Summed CUDA kernel time per call from the profiler (None on a CPU)."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    fn()
    sync(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(repeats):
            fn()
        sync(device)
    total_us = sum(
        evt.self_device_time_total for evt in prof.key_averages() if evt.self_device_time_total > 0
    )
    return total_us / repeats / 1e3


def _nbytes(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def bench(
    device: torch.device, dtype: torch.dtype, batch: int, size: int, repeats: int
) -> list[dict]:
    """Time forward and inverse for ours and pytorch_wavelets; return one row per measurement."""
    x = torch.randn(batch, 3, size, size, device=device).to(dtype)
    fwd_ref = DWTForward(J=1, wave="haar", mode="zero").to(device=device, dtype=dtype)
    inv_ref = DWTInverse(wave="haar", mode="zero").to(device=device, dtype=dtype)
    low, high = haar_dwt2(x)
    ref_low, (ref_high,) = fwd_ref(x)
    scale = x.abs().max().float()
    parity = max(
        ((low - ref_low).abs().max().float() / scale).item(),
        ((high - ref_high).abs().max().float() / scale).item(),
    )
    moved = _nbytes(x, low, high)  # forward and inverse both read one and write the other
    copy_wall = wall_ms(lambda: x.clone(), device, repeats)
    copy_kernel = kernel_ms(lambda: x.clone(), device, repeats) or copy_wall
    copy_gbps = 2 * _nbytes(x) / copy_kernel / 1e6
    # On CUDA both of our backends are timed: the elementwise torch path and the Triton kernels
    # (FREQLAT_HAAR_BACKEND=triton); on a CPU only the torch path exists.
    backends = ["torch", "triton"] if device.type == "cuda" else ["torch"]
    cases = {}
    for backend in backends:
        cases["forward", f"freqlat ({backend})"] = (backend, lambda: haar_dwt2(x))
    cases["forward", "pytorch_wavelets"] = (None, lambda: fwd_ref(x))
    for backend in backends:
        cases["inverse", f"freqlat ({backend})"] = (backend, lambda: haar_idwt2(low, high))
    cases["inverse", "pytorch_wavelets"] = (None, lambda: inv_ref((ref_low, [ref_high])))
    rows = []
    for (direction, impl), (backend, fn) in cases.items():
        if backend is not None:
            os.environ[BACKEND_ENV] = backend
            if backend == "triton":
                _check_triton_parity(x, ref_low, ref_high)
        with torch.no_grad():
            wall = wall_ms(fn, device, repeats)
            kern = kernel_ms(fn, device, repeats) or wall
        gbps = moved / kern / 1e6
        rows.append(
            {
                "direction": direction,
                "impl": impl,
                "dtype": str(dtype).removeprefix("torch."),
                "wall_ms": wall,
                "kernel_ms": kern,
                "gbps": gbps,
                "copy_fraction": gbps / copy_gbps,
                "copy_gbps": copy_gbps,
                "parity": parity,
            }
        )
    os.environ.pop(BACKEND_ENV, None)
    for direction in ("forward", "inverse"):
        ref = next(
            r for r in rows if r["direction"] == direction and r["impl"] == "pytorch_wavelets"
        )
        for r in rows:
            if r["direction"] == direction:
                r["speedup"] = ref["kernel_ms"] / r["kernel_ms"]
    return rows


def _check_triton_parity(x: torch.Tensor, ref_low: torch.Tensor, ref_high: torch.Tensor) -> None:
    """Refuse to time the Triton path unless it agrees with pytorch_wavelets on this input."""
    low, high = haar_dwt2(x)
    scale = x.abs().max().float()
    error = max((low - ref_low).abs().max().float(), (high - ref_high).abs().max().float()) / scale
    if error > 2 * torch.finfo(x.dtype).eps:
        raise SystemExit(
            f"Triton Haar path disagrees with pytorch_wavelets: rel. error {error:.2e}"
        )


def to_markdown(rows: list[dict], device: torch.device, batch: int, size: int) -> str:
    timer = "" if device.type == "cuda" else ", process CPU time"
    lines = [
        f"### Haar DWT, J=1, {batch} x 3 x {size} x {size} on {device_name(device)}{timer}",
        "",
        f"{datetime.date.today()}, torch {torch.__version__}, `benchmarks/bench_wavelets.py`. "
        "GB/s counts the bytes read and written once; the copy bandwidth (`x.clone()`) is "
        "measured in the same run, per dtype.",
        "",
        "| direction | dtype | implementation | ms/call | kernel ms | GB/s | copy GB/s | of copy bw | speed-up | max rel. diff |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['direction']} | {r['dtype']} | {r['impl']} | {r['wall_ms']:.3f} | "
            f"{r['kernel_ms']:.3f} | {r['gbps']:.1f} | {r['copy_gbps']:.1f} | {100 * r['copy_fraction']:.0f}% | "
            f"{r['speedup']:.2f}x | {r['parity']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=None, help="calls per timing round")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (CPU runs only)")
    parser.add_argument("--append", default=None, help="append the markdown table to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (50 if device.type == "cuda" else 3)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        rows += bench(device, dtype, args.batch, args.size, repeats)
    table = to_markdown(rows, device, args.batch, args.size)
    emit(table, args.append)


if __name__ == "__main__":
    main()

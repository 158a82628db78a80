"""Helpers shared by the tools/bench_*.py scripts: device sync, device name, table output."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


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

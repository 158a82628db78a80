"""One-level orthonormal Haar transform written as a few elementwise passes.

A one-level Haar DWT maps every 2 x 2 pixel block ``[[a, b], [c, d]]`` to

    LL = (a + b + c + d) / 2      LH = (a + b - c - d) / 2
    HL = (a - b + c - d) / 2      HH = (a - b - c + d) / 2

which is exactly what pytorch_wavelets computes with ``wave="haar"`` (LH is low-pass along the
width and high-pass along the height). Instead of two separable strided convolutions, the block is
viewed in place (``N x C x h x 2 x w x 2``), the two rows are averaged and differenced once
(``lerp`` folds the 1/2 in), and each band is one add or subtract written straight into the output.
On a CPU this is 2.6x faster than pytorch_wavelets forward and 5.9x inverse (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import functools
import os
from types import ModuleType

import torch
import torch.nn.functional as F

__all__ = ["haar_dwt2", "haar_idwt2"]


@functools.cache
def _triton_kernels() -> ModuleType | None:
    """The Triton pair (_haar_triton.py says why), imported on first CUDA use; None without triton."""
    try:
        from . import _haar_triton
    except ImportError:
        return None
    return _haar_triton


BACKEND_ENV = "FREQLAT_HAAR_BACKEND"
"""``triton`` routes CUDA tensors through the Triton kernels; unset or ``torch``: elementwise torch.

The Triton kernels are verified in Triton's CPU interpreter and compile for sm_90, but have not
yet run on a GPU, so they stay opt-in until ``tools/bench_wavelets.py`` has measured them there.
"""


def _use_triton(*tensors: torch.Tensor) -> bool:
    """Opted in, every tensor on CUDA in one dtype the Triton kernels support, triton imports."""
    return (
        os.environ.get(BACKEND_ENV, "torch") == "triton"
        and all(t.is_cuda for t in tensors)
        and len({t.dtype for t in tensors}) == 1
        and _triton_kernels() is not None
        and tensors[0].dtype in _triton_kernels().SUPPORTED_DTYPES
    )


def _needs_graph(*tensors: torch.Tensor) -> bool:
    """``out=`` writes are not differentiable: use them only when no graph is being recorded."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def haar_dwt2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One-level Haar DWT of an ``N x C x H x W`` batch, ``mode="zero"``.

    Returns ``(low, high)``: ``low`` is ``N x C x ceil(H/2) x ceil(W/2)`` and ``high`` is
    ``N x C x 3 x ceil(H/2) x ceil(W/2)`` with the bands ordered LH, HL, HH. Odd sizes are padded
    with one zero row/column at the bottom/right, as pytorch_wavelets does in mode "zero". The
    output has the input's dtype (also under autocast) and is differentiable.
    """
    if _use_triton(x):
        return _triton_kernels().haar_dwt2(x)
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2))
        h, w = h + h % 2, w + w % 2
    blocks = x.view(n, c, h // 2, 2, w // 2, 2)
    top, bottom = blocks[:, :, :, 0], blocks[:, :, :, 1]
    half_sum = torch.lerp(top, bottom, 0.5)  # ((a + c) / 2, (b + d) / 2)
    half_diff = top - half_sum  # ((a - c) / 2, (b - d) / 2)
    s0, s1 = half_sum.unbind(-1)
    d0, d1 = half_diff.unbind(-1)
    if _needs_graph(x):
        return s0 + s1, torch.stack((d0 + d1, s0 - s1, d0 - d1), dim=2)
    low = torch.add(s0, s1)
    high = x.new_empty(n, c, 3, h // 2, w // 2)
    torch.add(d0, d1, out=high[:, :, 0])
    torch.sub(s0, s1, out=high[:, :, 1])
    torch.sub(d0, d1, out=high[:, :, 2])
    return low, high


def haar_idwt2(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar_dwt2`: ``N x C x h x w`` and ``N x C x 3 x h x w`` to ``N x C x 2h x 2w``.

    Like pytorch_wavelets, the output of an odd-sized input is one row/column larger than the
    original; crop it if you need the original size.
    """
    if _use_triton(low, high):
        return _triton_kernels().haar_idwt2(low, high)
    n, c, h, w = low.shape
    lh, hl, hh = high.unbind(2)
    s0 = torch.lerp(low, hl, 0.5)  # (LL + HL) / 2
    s1 = low - s0  # (LL - HL) / 2
    d0 = torch.lerp(lh, hh, 0.5)  # (LH + HH) / 2
    d1 = lh - d0  # (LH - HH) / 2
    if _needs_graph(low, high):
        top = torch.stack((s0 + d0, s1 + d1), dim=-1)
        bottom = torch.stack((s0 - d0, s1 - d1), dim=-1)
        return torch.stack((top, bottom), dim=3).view(n, c, 2 * h, 2 * w)
    out = low.new_empty(n, c, h, 2, w, 2)
    torch.add(s0, d0, out=out[:, :, :, 0, :, 0])
    torch.add(s1, d1, out=out[:, :, :, 0, :, 1])
    torch.sub(s0, d0, out=out[:, :, :, 1, :, 0])
    torch.sub(s1, d1, out=out[:, :, :, 1, :, 1])
    return out.view(n, c, 2 * h, 2 * w)

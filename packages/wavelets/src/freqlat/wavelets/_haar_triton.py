"""One-level Haar DWT/IDWT as one Triton kernel each, for CUDA tensors.

The transform is memory bound: every input element is read once and every output element is
written once, so the best possible traffic is twice the tensor's size. The elementwise torch path
needs several passes (pad, row sums, band sums); these kernels make exactly one.

Forward: a program owns a tile of ``BLOCK_H`` output rows by ``BLOCK_W`` output columns of one
``(n, c)`` plane. For each output row it loads the two input rows as contiguous runs of
``2 * BLOCK_W`` columns (coalesced), sums and differences them, de-interleaves the even and odd
columns in registers (``reshape`` + ``split``) and writes LL, LH, HL, HH with plain row stores.
The zero padding of odd sizes (mode "zero") is never materialised: the missing bottom row/right
column is a masked load that reads as zero. The inverse is the same tile run backwards, with
``join`` + ``reshape`` interleaving the columns before two contiguous row stores.

Arithmetic runs in float32 (float64 for float64 inputs) and results are stored in the input dtype.
Both transforms are wrapped in autograd Functions whose backward is the other kernel: the Haar
matrix is orthonormal and symmetric, so each transform's adjoint is its inverse.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["SUPPORTED_DTYPES", "haar_dwt2", "haar_idwt2"]

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)

_MAX_BLOCK_W = 128  # output columns per tile: 2 x 128 fp32 input columns = one 1 KiB row run
_TILE_ELEMENTS = 1024  # output elements per band per tile: 8 per thread and band with 4 warps


@triton.jit
def _dwt_kernel(
    x_ptr,
    low_ptr,
    high_ptr,
    H,
    W,
    h,
    w,
    COMPUTE: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    plane = tl.program_id(0).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    cols = tl.program_id(2) * BLOCK_W + tl.arange(0, BLOCK_W)
    in_cols = tl.program_id(2) * (2 * BLOCK_W) + tl.arange(0, 2 * BLOCK_W)
    src = x_ptr + plane * H * W + (2 * rows)[:, None] * W + in_cols[None, :]
    col_ok = (in_cols < W)[None, :]
    top = tl.load(src, mask=(2 * rows < H)[:, None] & col_ok, other=0.0).to(COMPUTE)
    bottom = tl.load(src + W, mask=(2 * rows + 1 < H)[:, None] & col_ok, other=0.0).to(COMPUTE)
    # Interleaved pairs ((a + c) / 2, (b + d) / 2) and ((a - c) / 2, (b - d) / 2), split by parity.
    s0, s1 = tl.split(tl.reshape((top + bottom) * 0.5, (BLOCK_H, BLOCK_W, 2)))
    d0, d1 = tl.split(tl.reshape((top - bottom) * 0.5, (BLOCK_H, BLOCK_W, 2)))
    band = h * w
    offsets = rows[:, None] * w + cols[None, :]
    mask = (rows < h)[:, None] & (cols < w)[None, :]
    out_type = low_ptr.dtype.element_ty
    tl.store(low_ptr + plane * band + offsets, (s0 + s1).to(out_type), mask=mask)
    high = high_ptr + plane * 3 * band + offsets
    tl.store(high, (d0 + d1).to(out_type), mask=mask)  # LH
    tl.store(high + band, (s0 - s1).to(out_type), mask=mask)  # HL
    tl.store(high + 2 * band, (d0 - d1).to(out_type), mask=mask)  # HH


@triton.jit
def _idwt_kernel(
    low_ptr,
    high_ptr,
    out_ptr,
    h,
    w,
    COMPUTE: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    plane = tl.program_id(0).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    cols = tl.program_id(2) * BLOCK_W + tl.arange(0, BLOCK_W)
    band = h * w
    offsets = rows[:, None] * w + cols[None, :]
    mask = (rows < h)[:, None] & (cols < w)[None, :]
    ll = tl.load(low_ptr + plane * band + offsets, mask=mask, other=0.0).to(COMPUTE)
    high = high_ptr + plane * 3 * band + offsets
    lh = tl.load(high, mask=mask, other=0.0).to(COMPUTE)
    hl = tl.load(high + band, mask=mask, other=0.0).to(COMPUTE)
    hh = tl.load(high + 2 * band, mask=mask, other=0.0).to(COMPUTE)
    s0, s1 = (ll + hl) * 0.5, (ll - hl) * 0.5
    d0, d1 = (lh + hh) * 0.5, (lh - hh) * 0.5
    top = tl.reshape(tl.join(s0 + d0, s1 + d1), (BLOCK_H, 2 * BLOCK_W))  # a b a b ...
    bottom = tl.reshape(tl.join(s0 - d0, s1 - d1), (BLOCK_H, 2 * BLOCK_W))  # c d c d ...
    out_cols = tl.program_id(2) * (2 * BLOCK_W) + tl.arange(0, 2 * BLOCK_W)
    dst = out_ptr + plane * 4 * band + (2 * rows)[:, None] * (2 * w) + out_cols[None, :]
    out_mask = (rows < h)[:, None] & (out_cols < 2 * w)[None, :]
    out_type = out_ptr.dtype.element_ty
    tl.store(dst, top.to(out_type), mask=out_mask)
    tl.store(dst + 2 * w, bottom.to(out_type), mask=out_mask)


def _launch_config(planes: int, h: int, w: int) -> tuple[tuple[int, int, int], dict]:
    """Grid (planes, row tiles, column tiles) and tile sizes for an ``h x w`` band."""
    block_w = min(_MAX_BLOCK_W, triton.next_power_of_2(w))
    block_h = min(triton.next_power_of_2(h), max(1, _TILE_ELEMENTS // block_w))
    grid = (planes, triton.cdiv(h, block_h), triton.cdiv(w, block_w))
    # No FMA contraction: keeps the rounding of the separate adds and scales the torch path does.
    config = {"BLOCK_H": block_h, "BLOCK_W": block_w, "num_warps": 4, "enable_fp_fusion": False}
    return grid, config


def _compute_type(dtype: torch.dtype) -> tl.dtype:
    return tl.float64 if dtype == torch.float64 else tl.float32


def _dwt(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.contiguous()  # also turns channels-last into the NCHW layout the kernel indexes
    n, c, height, width = x.shape
    h, w = (height + 1) // 2, (width + 1) // 2
    low = x.new_empty(n, c, h, w)
    high = x.new_empty(n, c, 3, h, w)
    if low.numel():
        grid, config = _launch_config(n * c, h, w)
        with torch.cuda.device_of(x):  # Triton launches on the current device, not the tensor's
            _dwt_kernel[grid](x, low, high, height, width, h, w, _compute_type(x.dtype), **config)
    return low, high


def _idwt(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    n, c, h, w = low.shape
    if high.shape != (n, c, 3, h, w) or high.dtype != low.dtype:
        raise ValueError(
            f"high must be N x C x 3 x h x w = {(n, c, 3, h, w)} with dtype {low.dtype} to match "
            f"low, got {tuple(high.shape)} {high.dtype}"
        )
    low, high = low.contiguous(), high.contiguous()
    out = low.new_empty(n, c, 2 * h, 2 * w)
    if out.numel():
        grid, config = _launch_config(n * c, h, w)
        with torch.cuda.device_of(out):
            _idwt_kernel[grid](low, high, out, h, w, _compute_type(low.dtype), **config)
    return out


class _HaarForward(torch.autograd.Function):
    """Forward kernel; its gradient is the inverse kernel cropped to the unpadded input size."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.input_size = x.shape[-2:]
        return _dwt(x)

    @staticmethod
    def backward(ctx, grad_low: torch.Tensor, grad_high: torch.Tensor) -> torch.Tensor:
        height, width = ctx.input_size
        return _HaarInverse.apply(grad_low, grad_high)[..., :height, :width]


class _HaarInverse(torch.autograd.Function):
    """Inverse kernel; its gradient is the forward kernel (an even-sized input, so no padding)."""

    @staticmethod
    def forward(ctx, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return _idwt(low, high)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _HaarForward.apply(grad_out)


def haar_dwt2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton version of ``freqlat.wavelets.haar_dwt2``: same shapes, bands, padding and dtype."""
    return _HaarForward.apply(x)


def haar_idwt2(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Triton version of ``freqlat.wavelets.haar_idwt2``: ``N x C x 2h x 2w`` in ``low``'s dtype."""
    return _HaarInverse.apply(low, high)

"""Multi-level 2-D discrete wavelet transform with the pytorch_wavelets conventions.

``dwt2``/``idwt2`` take and return exactly what ``pytorch_wavelets.DWTForward`` /
``DWTInverse`` do, so one can replace the other. Haar (``"haar"``/``"db1"``) runs through the fused
convolution in :mod:`freqlat.wavelets._haar` wherever it gives the same result as pytorch_wavelets
(every size in mode "zero", even sizes in every mode); everything else runs through
pytorch_wavelets' own filter banks, with filters built in the input dtype from pywt's float64
coefficients (pytorch_wavelets' modules round them to float32 first).

The filter banks are composed from pytorch_wavelets' differentiable 1-D passes rather than its
``AFB2D``/``SFB2D`` autograd functions: their hand-written backward applies the synthesis bank in
the same padding mode, which is not the adjoint of the forward pass outside mode "zero" (gradcheck
fails for db2 in every other mode), so autograd differentiates the passes instead.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import numpy as np
import pywt
import torch

with warnings.catch_warnings():
    # pytorch_wavelets 1.3.0 imports pkg_resources, which warns on every import
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    from pytorch_wavelets.dwt import lowlevel

from ._checks import check_image_batch
from ._haar import haar_dwt2, haar_idwt2

__all__ = ["MODES", "dwt2", "idwt2", "max_levels"]

MODES = ("zero", "symmetric", "reflect", "periodic", "periodization")
"""Boundary modes that pytorch_wavelets implements (pywt names)."""

_HAAR_NAMES = ("haar", "db1")


def _wavelet(wave: str | pywt.Wavelet) -> pywt.Wavelet:
    """Resolve a wavelet name, raising ``ValueError`` that lists the valid names."""
    if isinstance(wave, pywt.Wavelet):
        return wave
    if not isinstance(wave, str) or wave not in pywt.wavelist(kind="discrete"):
        raise ValueError(
            f"unknown wavelet {wave!r}: use a discrete pywt wavelet name, one of "
            f"{', '.join(pywt.wavelist(kind='discrete'))}"
        )
    return pywt.Wavelet(wave)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")


def _is_haar(wave: str | pywt.Wavelet) -> bool:
    name = wave.name if isinstance(wave, pywt.Wavelet) else wave
    return name in _HAAR_NAMES


def max_levels(size: int, wave: str | pywt.Wavelet = "haar") -> int:
    """Most decomposition levels a signal of ``size`` samples allows (``pywt.dwt_max_level``)."""
    return pywt.dwt_max_level(size, _wavelet(wave).dec_len)


@functools.lru_cache(maxsize=128)
def _filters(
    wave_name: str, synthesis: bool, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Column and row filters laid out as pytorch_wavelets' low-level functions expect."""
    wavelet = pywt.Wavelet(wave_name)
    if synthesis:
        lo, hi = np.asarray(wavelet.rec_lo), np.asarray(wavelet.rec_hi)
    else:  # analysis filters are applied as a correlation, hence reversed
        lo, hi = np.asarray(wavelet.dec_lo)[::-1], np.asarray(wavelet.dec_hi)[::-1]
    col = [torch.tensor(f.copy(), dtype=torch.float64).reshape(1, 1, -1, 1) for f in (lo, hi)]
    row = [t.reshape(1, 1, 1, -1) for t in col]
    return tuple(t.to(device=device, dtype=dtype) for t in (*col, *row))


def _analysis(
    x: torch.Tensor, filters: tuple[torch.Tensor, ...], mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """One analysis level: filter along the width, then the height; split LL from the details."""
    lo_col, hi_col, lo_row, hi_row = filters
    lohi = lowlevel.afb1d(x, lo_row, hi_row, mode=mode, dim=3)
    bands = lowlevel.afb1d(lohi, lo_col, hi_col, mode=mode, dim=2)
    bands = bands.unflatten(1, (x.shape[1], 4))
    return bands[:, :, 0], bands[:, :, 1:]


def _synthesis(
    low: torch.Tensor, high: torch.Tensor, filters: tuple[torch.Tensor, ...], mode: str
) -> torch.Tensor:
    """One synthesis level, the inverse of :func:`_analysis`."""
    lo_col, hi_col, lo_row, hi_row = filters
    lh, hl, hh = torch.unbind(high, dim=2)
    lo = lowlevel.sfb1d(low, lh, lo_col, hi_col, mode=mode, dim=2)
    hi = lowlevel.sfb1d(hl, hh, lo_col, hi_col, mode=mode, dim=2)
    return lowlevel.sfb1d(lo, hi, lo_row, hi_row, mode=mode, dim=3)


def dwt2(
    x: torch.Tensor, wave: str = "haar", levels: int = 1, mode: str = "zero"
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Multi-level 2-D DWT of an ``N x C x H x W`` floating-point batch.

    Returns ``(low, highs)``: ``low`` is the coarsest approximation ``N x C x H' x W'``; ``highs``
    is a list, finest level first, of ``N x C x 3 x h x w`` detail tensors ordered LH, HL, HH.
    Identical in layout and values to ``pytorch_wavelets.DWTForward(J=levels, wave, mode)``.
    """
    check_image_batch(x)
    wavelet = _wavelet(wave)
    _check_mode(mode)
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be a positive int, got {levels!r}")
    allowed = max_levels(min(x.shape[-2:]), wavelet)
    if levels > allowed:
        raise ValueError(
            f"{levels} levels of {wavelet.name!r} need a larger image: size "
            f"{tuple(x.shape[-2:])} allows at most {allowed}"
        )
    highs = []
    low = x
    for _ in range(levels):
        if _is_haar(wavelet) and (
            mode == "zero" or (low.shape[-2] % 2 == 0 and low.shape[-1] % 2 == 0)
        ):
            low, high = haar_dwt2(low)
        else:
            low, high = _analysis(low, _filters(wavelet.name, False, low.dtype, low.device), mode)
        highs.append(high)
    return low, highs


def _check_bands(low: torch.Tensor, highs: Sequence[torch.Tensor]) -> None:
    check_image_batch(low, "low")
    if isinstance(highs, torch.Tensor) or not isinstance(highs, Sequence) or len(highs) == 0:
        raise ValueError("highs must be a non-empty list of N x C x 3 x h x w tensors")
    n, c = low.shape[:2]
    for level, high in enumerate(highs):
        if not isinstance(high, torch.Tensor) or high.ndim != 5 or high.shape[2] != 3:
            shape = tuple(high.shape) if isinstance(high, torch.Tensor) else type(high).__name__
            raise ValueError(f"highs[{level}] must be N x C x 3 x h x w, got {shape}")
        if high.shape[:2] != (n, c):
            raise ValueError(
                f"highs[{level}] has batch/channels {tuple(high.shape[:2])}, low has {(n, c)}"
            )
        if high.dtype != low.dtype or high.device != low.device:
            raise ValueError(
                f"highs[{level}] is {high.dtype} on {high.device}, low is {low.dtype} on {low.device}"
            )


def idwt2(
    low: torch.Tensor, highs: Sequence[torch.Tensor], wave: str = "haar", mode: str = "zero"
) -> torch.Tensor:
    """Inverse of :func:`dwt2`; identical to ``pytorch_wavelets.DWTInverse(wave, mode)``.

    As in pytorch_wavelets, an odd-sized input comes back one row/column larger at each level
    where it was padded; crop to the original size when needed.
    """
    _check_bands(low, highs)
    wavelet = _wavelet(wave)
    _check_mode(mode)
    x = low
    for level in range(len(highs) - 1, -1, -1):
        high = highs[level]
        # A coarser level computed from an odd-sized input is one sample larger than the detail
        # bands of the finer level; drop that padding sample, as pytorch_wavelets does.
        if x.shape[-2] == high.shape[-2] + 1:
            x = x[..., :-1, :]
        if x.shape[-1] == high.shape[-1] + 1:
            x = x[..., :-1]
        if x.shape[-2:] != high.shape[-2:]:
            raise ValueError(
                f"highs[{level}] is {tuple(high.shape[-2:])} spatially, but the level above it "
                f"reconstructs to {tuple(x.shape[-2:])}"
            )
        if _is_haar(wavelet):
            x = haar_idwt2(x, high)
        else:
            x = _synthesis(x, high, _filters(wavelet.name, True, x.dtype, x.device), mode)
    return x

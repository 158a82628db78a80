"""Multi-level 2-D discrete wavelet transform with the pytorch_wavelets conventions.

``dwt2``/``idwt2`` take and return exactly what ``pytorch_wavelets.DWTForward`` /
``DWTInverse`` do, so one can replace the other: ``wave`` may be a name, a ``pywt.Wavelet`` or a
tuple of filters, and its own coefficients are used (a wavelet is never rebuilt from its name),
every returned tensor is contiguous, and more levels than pywt's maximum are computed with pywt's
warning. Haar's filters run through the fused convolution in :mod:`freqlat.wavelets._haar`
wherever it gives the same result as pytorch_wavelets (every size in mode "zero", even sizes in
every mode); everything else runs through pytorch_wavelets' own filter banks, with filters built
in the input dtype from the float64 coefficients (pytorch_wavelets' modules round them to float32
first).

The filter banks are composed from pytorch_wavelets' differentiable 1-D passes rather than its
``AFB2D``/``SFB2D`` autograd functions: their hand-written backward applies the synthesis bank in
the same padding mode, which is not the adjoint of the forward pass outside mode "zero" (gradcheck
fails for db2 in every other mode), so autograd differentiates the passes instead.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pywt
import torch

with warnings.catch_warnings():
    # pytorch_wavelets 1.3.0 imports pkg_resources, which warns on every import
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    from pytorch_wavelets.dwt import lowlevel

from ._checks import check_image_batch
from ._haar import haar_dwt2, haar_idwt2

__all__ = ["MODES", "WaveletSpec", "dwt2", "idwt2", "max_levels"]

MODES = ("zero", "symmetric", "reflect", "periodic", "periodization")
"""Boundary modes that pytorch_wavelets implements (pywt names)."""

WaveletSpec = str | pywt.Wavelet | Sequence[Sequence[float]]
"""What ``wave`` may be, as in pytorch_wavelets: a discrete pywt name, a ``pywt.Wavelet`` (its own
filters, whatever its name), or 2 or 4 1-D filters ``(lo, hi)`` / ``(lo_col, hi_col, lo_row,
hi_row)``: analysis filters for :func:`dwt2`, synthesis filters for :func:`idwt2`."""

Filter = tuple[float, ...]


@dataclass(frozen=True)
class _FilterBank:
    """The low/high-pass pair applied along the width and the pair applied along the height.

    pytorch_wavelets applies the first pair of a 4-tuple ``(h0_col, h1_col, h0_row, h1_row)``
    along the width (its ``AFB2D`` receives them under the row names) and the second along the
    height; a pywt wavelet or a 2-tuple uses one pair for both.
    """

    width: tuple[Filter, Filter]
    height: tuple[Filter, Filter]

    @property
    def length(self) -> int:
        """Longest filter, the ``filter_len`` of ``pywt.dwt_max_level``."""
        return max(len(f) for f in (*self.width, *self.height))


_HAAR = pywt.Wavelet("haar")
_HAAR_BANKS = {
    False: ((tuple(_HAAR.dec_lo), tuple(_HAAR.dec_hi)),) * 2,
    True: ((tuple(_HAAR.rec_lo), tuple(_HAAR.rec_hi)),) * 2,
}


def _coefficients(values: object, what: str) -> Filter:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not a sequence of numbers: {exc}") from None
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"{what} must be a 1-D filter of at least 2 taps, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} has values that are not finite: {array.tolist()}")
    return tuple(array.tolist())


def _pair(lo: object, hi: object, what: str) -> tuple[Filter, Filter]:
    pair = (_coefficients(lo, f"{what} lowpass"), _coefficients(hi, f"{what} highpass"))
    if len(pair[0]) != len(pair[1]):
        raise ValueError(
            f"{what} lowpass and highpass must have the same length, got {len(pair[0])} and "
            f"{len(pair[1])} taps"
        )
    return pair


def _filter_bank(wave: WaveletSpec, synthesis: bool) -> _FilterBank:
    """The filters ``wave`` stands for, raising ``ValueError`` that says what is wrong."""
    if isinstance(wave, str):
        if wave not in pywt.wavelist(kind="discrete"):
            raise ValueError(
                f"unknown wavelet {wave!r}: use a discrete pywt wavelet name, one of "
                f"{', '.join(pywt.wavelist(kind='discrete'))}, a pywt.Wavelet or a filter tuple"
            )
        wave = pywt.Wavelet(wave)
    if isinstance(wave, pywt.Wavelet):
        lo, hi = (wave.rec_lo, wave.rec_hi) if synthesis else (wave.dec_lo, wave.dec_hi)
        pair = _pair(lo, hi, f"wavelet {wave.name!r}")
        return _FilterBank(pair, pair)
    if isinstance(wave, Sequence) and not isinstance(wave, (str, bytes)):
        if len(wave) == 2:
            pair = _pair(wave[0], wave[1], "filter")
            return _FilterBank(pair, pair)
        if len(wave) == 4:
            return _FilterBank(
                _pair(wave[0], wave[1], "first (width) filter"),
                _pair(wave[2], wave[3], "second (height) filter"),
            )
        raise ValueError(f"a filter bank has 2 or 4 filters (lo, hi[, lo, hi]), got {len(wave)}")
    raise ValueError(
        f"wave must be a wavelet name, a pywt.Wavelet or a tuple of 2 or 4 filters, "
        f"got {type(wave).__name__}"
    )


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")


def _is_haar(bank: _FilterBank, synthesis: bool) -> bool:
    """Haar's own coefficients (any name), the only filters the fused Haar pair computes."""
    return (bank.width, bank.height) == _HAAR_BANKS[synthesis]


def max_levels(size: int, wave: WaveletSpec = "haar") -> int:
    """Levels pywt calls useful for a signal of ``size`` samples (``pywt.dwt_max_level``).

    More levels can still be computed; :func:`dwt2` then warns as pywt does.
    """
    return pywt.dwt_max_level(size, _filter_bank(wave, False).length)


@functools.lru_cache(maxsize=128)
def _filters(
    bank: _FilterBank, synthesis: bool, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Height and width filters laid out as pytorch_wavelets' low-level functions expect."""
    # analysis filters are applied as a correlation, hence reversed
    order = 1 if synthesis else -1
    height = [
        torch.tensor(f[::order], dtype=torch.float64).reshape(1, 1, -1, 1) for f in bank.height
    ]
    width = [torch.tensor(f[::order], dtype=torch.float64).reshape(1, 1, 1, -1) for f in bank.width]
    return tuple(t.to(device=device, dtype=dtype) for t in (*height, *width))


def _analysis(
    x: torch.Tensor, filters: tuple[torch.Tensor, ...], mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """One analysis level: filter along the width, then the height; split LL from the details.

    Both outputs are contiguous, as pytorch_wavelets' ``AFB2D`` returns them.
    """
    lo_col, hi_col, lo_row, hi_row = filters
    lohi = lowlevel.afb1d(x, lo_row, hi_row, mode=mode, dim=3)
    bands = lowlevel.afb1d(lohi, lo_col, hi_col, mode=mode, dim=2)
    bands = bands.unflatten(1, (x.shape[1], 4))
    return bands[:, :, 0].contiguous(), bands[:, :, 1:].contiguous()


def _synthesis(
    low: torch.Tensor, high: torch.Tensor, filters: tuple[torch.Tensor, ...], mode: str
) -> torch.Tensor:
    """One synthesis level, the inverse of :func:`_analysis`."""
    lo_col, hi_col, lo_row, hi_row = filters
    lh, hl, hh = torch.unbind(high, dim=2)
    lo = lowlevel.sfb1d(low, lh, lo_col, hi_col, mode=mode, dim=2)
    hi = lowlevel.sfb1d(hl, hh, lo_col, hi_col, mode=mode, dim=2)
    return lowlevel.sfb1d(lo, hi, lo_row, hi_row, mode=mode, dim=3).contiguous()


def _check_reflect_padding(size: tuple[int, int], bank: _FilterBank, level: int) -> None:
    """Mode "reflect" pads by mirroring, which needs more samples than the padding on each side.

    pywt refuses a 1-sample signal in this mode; torch's reflect padding (what pytorch_wavelets
    uses) refuses any padding as long as the signal. Say so in one line instead.
    """
    for axis, n, pair in (("height", size[0], bank.height), ("width", size[1], bank.width)):
        taps = len(pair[0])
        pad = 2 * (pywt.dwt_coeff_len(n, taps, mode="reflect") - 1) - n + taps
        if (pad + 1) // 2 >= n:
            raise ValueError(
                f"level {level} in mode 'reflect' cannot be computed: its input is {n} samples "
                f"along the {axis}, too short to mirror the {(pad + 1) // 2} samples of padding a "
                f"{taps}-tap filter needs; use fewer levels or another mode (e.g. 'symmetric')"
            )


def dwt2(
    x: torch.Tensor, wave: WaveletSpec = "haar", levels: int = 1, mode: str = "zero"
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Multi-level 2-D DWT of an ``N x C x H x W`` floating-point batch.

    Returns ``(low, highs)``: ``low`` is the coarsest approximation ``N x C x H' x W'``; ``highs``
    is a list, finest level first, of ``N x C x 3 x h x w`` detail tensors ordered LH, HL, HH.
    Identical in layout and values to ``pytorch_wavelets.DWTForward(J=levels, wave, mode)``, and
    every tensor is contiguous. ``wave`` is used with its own filters (see :data:`WaveletSpec`).
    More levels than ``pywt.dwt_max_level`` allows are computed, with the warning pywt gives.
    """
    check_image_batch(x)
    if 0 in x.shape[-2:]:
        raise ValueError(f"x has an empty side: shape {tuple(x.shape)}")
    bank = _filter_bank(wave, False)
    _check_mode(mode)
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be a positive int, got {levels!r}")
    allowed = min(
        pywt.dwt_max_level(x.shape[-2], len(bank.height[0])),
        pywt.dwt_max_level(x.shape[-1], len(bank.width[0])),
    )
    if levels > allowed:
        # pywt.wavedec2 warns with this text and computes every level; pytorch_wavelets is silent
        warnings.warn(
            f"Level value of {levels} is too high: all coefficients will experience boundary "
            f"effects (size {tuple(x.shape[-2:])} allows {allowed} levels by "
            "pywt.dwt_max_level; the extra levels are computed as pywt and pytorch_wavelets do)",
            UserWarning,
            stacklevel=2,
        )
    haar = _is_haar(bank, False)
    highs = []
    low = x
    for level in range(1, levels + 1):
        if haar and (mode == "zero" or (low.shape[-2] % 2 == 0 and low.shape[-1] % 2 == 0)):
            low, high = haar_dwt2(low)
        else:
            if mode == "reflect":
                _check_reflect_padding(tuple(low.shape[-2:]), bank, level)
            low, high = _analysis(low, _filters(bank, False, low.dtype, low.device), mode)
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
    low: torch.Tensor,
    highs: Sequence[torch.Tensor],
    wave: WaveletSpec = "haar",
    mode: str = "zero",
) -> torch.Tensor:
    """Inverse of :func:`dwt2`; identical to ``pytorch_wavelets.DWTInverse(wave, mode)``.

    ``wave`` gives the synthesis filters (a wavelet's ``rec_lo``/``rec_hi``, or a filter tuple
    taken as synthesis filters, as ``DWTInverse`` does). As in pytorch_wavelets, an odd-sized
    input comes back one row/column larger at each level where it was padded; crop to the
    original size when needed. The result is contiguous.
    """
    _check_bands(low, highs)
    bank = _filter_bank(wave, True)
    haar = _is_haar(bank, True)
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
        if haar:
            x = haar_idwt2(x, high)
        else:
            x = _synthesis(x, high, _filters(bank, True, x.dtype, x.device), mode)
    return x

"""Frequency statistics of image batches: radially averaged power spectra and band energies."""

from __future__ import annotations

import torch

from ._checks import check_image_batch
from .bands import BAND_NAMES
from .transform import WaveletSpec, dwt2

__all__ = ["band_energies", "radial_frequencies", "radial_power_spectrum"]


def _radial_bins(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """Integer radius (in units of 1 / min(H, W) cycles per pixel) of every FFT coefficient."""
    size = min(height, width)
    fy = torch.fft.fftfreq(height, device=device, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(width, device=device, dtype=torch.float64)[None, :]
    radius = torch.round(torch.sqrt(fy**2 + fx**2) * size).long()
    return radius, size // 2 + 1


def radial_frequencies(height: int, width: int | None = None) -> torch.Tensor:
    """Frequency of each bin of :func:`radial_power_spectrum`, in cycles per pixel (0 ... 0.5)."""
    size = min(height, width if width is not None else height)
    return torch.arange(size // 2 + 1, dtype=torch.float64) / size


def radial_power_spectrum(x: torch.Tensor) -> torch.Tensor:
    """Radially averaged power spectrum of every image and channel: ``N x C x R`` (float64).

    The power of a coefficient is ``|FFT2(x)|^2 / (H * W)``, so that white noise of variance s^2
    has a flat spectrum at s^2. Coefficients are grouped by their rounded radius in units of
    ``1 / min(H, W)`` cycles per pixel; the ``R = min(H, W) // 2 + 1`` bins run from DC to the
    Nyquist frequency of the shorter side (:func:`radial_frequencies`), and the corners beyond it
    are left out. Each bin holds the mean power of its coefficients.
    """
    check_image_batch(x)
    n, c, h, w = x.shape
    power = torch.fft.fft2(x.detach().to(torch.float64)).abs().square() / (h * w)
    radius, num_bins = _radial_bins(h, w, x.device)
    keep = radius < num_bins
    index = radius[keep]
    flat = power[..., keep].reshape(n * c, -1)
    sums = flat.new_zeros(n * c, num_bins).index_add_(1, index, flat)
    counts = torch.bincount(index, minlength=num_bins).to(flat.dtype)
    return (sums / counts).reshape(n, c, num_bins)


def band_energies(
    x: torch.Tensor, levels: int = 1, wave: WaveletSpec = "haar", mode: str = "zero"
) -> dict[str, torch.Tensor]:
    """Mean squared coefficient of every subband per image: ``{"LL": (N,), "LH1": (N,), ...}``.

    Keys follow :func:`freqlat.wavelets.band_names` (level 1 is the finest). With an orthonormal
    wavelet, the energies weighted by their coefficient counts sum to the image's energy.
    """
    low, highs = dwt2(x, wave, levels, mode)
    energies = {"LL": low.detach().square().mean(dim=(1, 2, 3))}
    for level, high in enumerate(highs, start=1):
        per_band = high.detach().square().mean(dim=(1, 3, 4))
        for index, band in enumerate(BAND_NAMES):
            energies[f"{band}{level}"] = per_band[:, index]
    return energies

"""Pixel-space reconstruction metrics: MSE, the Low/High wavelet band errors, PSNR and SSIM.

Images are N x C x H x W float tensors. MSE and the band errors are the FA-VAE README's columns (docs/reproduction.md: images in
[-1, 1], one-level Haar DWT with ``mode="zero"``); PSNR and SSIM take the data range explicitly
(2.0 for images in [-1, 1], 255.0 for uint8 values), because a silent default range is the most
common way published PSNR/SSIM numbers disagree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from freqlat.metrics._checks import check_image_batch, check_same_shape
from freqlat.wavelets import band_mse

SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def recon_mse(x: torch.Tensor, y: torch.Tensor, *, check_range: bool = True) -> torch.Tensor:
    """Mean squared error over all pixels and channels of two [-1, 1] image batches (0-dim).

    ``check_range=False`` lets ``y`` leave [-1, 1] (an unclamped decoder output).
    """
    check_image_batch(x, "x")
    check_image_batch(y, "y", check_range=check_range)
    check_same_shape(x, y, ("x", "y"))
    return (x.double() - y.double()).square().mean()


def band_errors(
    x: torch.Tensor, y: torch.Tensor, *, check_range: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The FA-VAE README's Low and High columns: MSE of the Haar LL band and of the detail bands.

    Computed by :func:`freqlat.wavelets.band_mse` (one-level orthonormal Haar, ``mode="zero"``).
    For even image sizes ``recon_mse == (low + 3 * high) / 4``. ``check_range=False`` lets ``y``
    leave [-1, 1] (an unclamped decoder output).
    """
    check_image_batch(x, "x")
    check_image_batch(y, "y", check_range=check_range)
    check_same_shape(x, y, ("x", "y"))
    low, high = band_mse(x.double(), y.double())
    return low, high


def _check_range(x: torch.Tensor, y: torch.Tensor, data_range: float) -> None:
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    for name, t in (("x", x), ("y", y)):
        if t.dim() != 4 or not torch.is_floating_point(t):
            raise ValueError(
                f"{name} must be a float N x C x H x W tensor, got {t.dtype} {tuple(t.shape)}"
            )
        spread = float(t.max() - t.min())
        if spread > data_range * (1 + 1e-6):
            raise ValueError(
                f"{name} spans {spread:.4g}, more than data_range={data_range}; "
                "pass the range the images really use (2.0 for [-1, 1], 255.0 for 0..255)"
            )
    check_same_shape(x, y, ("x", "y"))


def per_image_mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error, shape (N,), in float64."""
    check_same_shape(x, y, ("x", "y"))
    return (x.double() - y.double()).square().flatten(1).mean(1)


def psnr_from_mse(mse: torch.Tensor, data_range: float) -> torch.Tensor:
    """PSNR in dB from a mean squared error: 10 log10(data_range^2 / mse) (inf where mse is 0)."""
    return 10.0 * torch.log10(data_range**2 / mse.double())


def psnr(x: torch.Tensor, y: torch.Tensor, *, data_range: float) -> torch.Tensor:
    """Per-image PSNR in dB, shape (N,). Average it for the usual "mean PSNR" column.

    ``data_range`` is the width of the value range (2.0 for [-1, 1] images). The dataset-level
    variant, PSNR of the pooled MSE, is :func:`dataset_psnr`.
    """
    _check_range(x, y, data_range)
    return psnr_from_mse(per_image_mse(x, y), data_range)


def dataset_psnr(x: torch.Tensor, y: torch.Tensor, *, data_range: float) -> torch.Tensor:
    """Dataset-level PSNR in dB: 10 log10(data_range^2 / MSE pooled over every pixel) (0-dim)."""
    _check_range(x, y, data_range)
    return psnr_from_mse(per_image_mse(x, y).mean(), data_range)


def gaussian_window(size: int = SSIM_WINDOW_SIZE, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``size`` taps (float64), the separable SSIM window."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    window = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return window / window.sum()


def _separable_blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    channels = x.shape[1]
    size = window.numel()
    kernel_h = window.view(1, 1, size, 1).expand(channels, 1, size, 1)
    kernel_w = window.view(1, 1, 1, size).expand(channels, 1, 1, size)
    x = F.conv2d(x, kernel_h, groups=channels)
    return F.conv2d(x, kernel_w, groups=channels)


def ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004), shape (N,), averaged over channels.

    Gaussian window of 11 taps with sigma 1.5, K1 = 0.01, K2 = 0.03, population (not sample)
    covariances, and the mean taken over the positions where the whole window fits. This is what
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=data_range, channel_axis=0)`` returns per image.
    """
    _check_range(x, y, data_range)
    if min(x.shape[-2:]) < SSIM_WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW_SIZE} x {SSIM_WINDOW_SIZE}, "
            f"got {tuple(x.shape[-2:])}"
        )
    x, y = x.double(), y.double()
    window = gaussian_window().to(x.device)
    mu_x, mu_y = _separable_blur(x, window), _separable_blur(y, window)
    var_x = _separable_blur(x * x, window) - mu_x * mu_x
    var_y = _separable_blur(y * y, window) - mu_y * mu_y
    cov_xy = _separable_blur(x * y, window) - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return (numerator / denominator).flatten(1).mean(1)

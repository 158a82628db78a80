"""Detail-band layouts and the FA-VAE scale convention.

FA-VAE's high-frequency branch sees the three detail bands of every colour as channels of one
image, colour-major: R-LH, R-HL, R-HH, G-LH, G-HL, G-HH, B-LH, B-HL, B-HH. Both bands are divided by
2 before encoding (orthonormal Haar LL of a [-1, 1] image lies in [-2, 2]) and multiplied by 2 on
the way back (HY-Wong/LightningDiT `vavae/analysis.py`; docs/reproduction.md).
"""

from __future__ import annotations

import torch

from ._checks import check_image_batch
from ._haar import haar_dwt2, haar_idwt2

__all__ = [
    "BAND_NAMES",
    "BAND_SCALE",
    "band_names",
    "bands_to_channels",
    "channels_to_bands",
    "haar_merge",
    "haar_split",
]

BAND_NAMES = ("LH", "HL", "HH")
"""Order of the detail bands in every ``N x C x 3 x h x w`` tensor."""

BAND_SCALE = 2.0
"""FA-VAE divides both Haar bands by this before encoding and multiplies after decoding."""


def band_names(levels: int) -> list[str]:
    """Names of all subbands of a ``levels``-level DWT: ``LL``, then ``LH1, HL1, HH1, LH2, ...``.

    Level 1 is the finest, matching the order of ``highs`` returned by :func:`dwt2`.
    """
    return ["LL"] + [f"{band}{level}" for level in range(1, levels + 1) for band in BAND_NAMES]


def bands_to_channels(high: torch.Tensor) -> torch.Tensor:
    """Detail bands ``N x C x 3 x h x w`` as channels ``N x 3C x h x w``, colour-major.

    The channel order is R-LH, R-HL, R-HH, G-LH, ... (the input of FA-VAE's high branch).
    """
    if not isinstance(high, torch.Tensor) or high.ndim != 5 or high.shape[2] != 3:
        shape = tuple(high.shape) if isinstance(high, torch.Tensor) else type(high).__name__
        raise ValueError(f"detail bands must be N x C x 3 x h x w, got {shape}")
    return high.flatten(1, 2)


def channels_to_bands(channels: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`bands_to_channels`: ``N x 3C x h x w`` -> ``N x C x 3 x h x w``."""
    check_image_batch(channels, "channels")
    if channels.shape[1] % 3:
        raise ValueError(
            f"band channels must be a multiple of 3 (LH, HL, HH per colour), got {channels.shape[1]}"
        )
    return channels.unflatten(1, (channels.shape[1] // 3, 3))


def haar_split(x: torch.Tensor, scale: float = BAND_SCALE) -> tuple[torch.Tensor, torch.Tensor]:
    """FA-VAE's input split: ``(LL / scale, detail channels / scale)``.

    For a ``N x 3 x H x W`` image this gives ``N x 3 x H/2 x W/2`` and ``N x 9 x H/2 x W/2``.
    """
    check_image_batch(x)
    low, high = haar_dwt2(x)
    return low / scale, bands_to_channels(high) / scale


def haar_merge(low: torch.Tensor, high: torch.Tensor, scale: float = BAND_SCALE) -> torch.Tensor:
    """Inverse of :func:`haar_split`: recompose the image from the two scaled branches."""
    check_image_batch(low, "low")
    bands = channels_to_bands(high)
    if bands.shape[1] != low.shape[1] or bands.shape[-2:] != low.shape[-2:]:
        raise ValueError(
            f"low {tuple(low.shape)} and high {tuple(high.shape)} do not come from one image: "
            "high needs 3x the channels of low and the same spatial size"
        )
    return haar_idwt2(low * scale, bands * scale)

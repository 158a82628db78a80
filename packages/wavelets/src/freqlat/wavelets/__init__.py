"""freqlat.wavelets: 2-D wavelet transforms, band layouts, band losses and spectra for images.

The layout follows pytorch_wavelets: ``dwt2`` returns ``(low, highs)`` with ``highs`` a list,
finest level first, of ``N x C x 3 x h x w`` tensors ordered LH, HL, HH. One-level Haar, the case
FA-VAE and the FA-VAE README's metrics use, runs through a fused convolution.
"""

from ._haar import haar_dwt2, haar_idwt2
from .bands import (
    BAND_NAMES,
    BAND_SCALE,
    band_names,
    bands_to_channels,
    channels_to_bands,
    haar_merge,
    haar_split,
)
from .losses import WaveletLoss, band_mse, multilevel_band_mse
from .spectrum import band_energies, radial_frequencies, radial_power_spectrum
from .transform import MODES, WaveletSpec, dwt2, idwt2, max_levels

__all__ = [
    "BAND_NAMES",
    "BAND_SCALE",
    "MODES",
    "WaveletLoss",
    "WaveletSpec",
    "band_energies",
    "band_mse",
    "band_names",
    "bands_to_channels",
    "channels_to_bands",
    "dwt2",
    "haar_dwt2",
    "haar_idwt2",
    "haar_merge",
    "haar_split",
    "idwt2",
    "max_levels",
    "multilevel_band_mse",
    "radial_frequencies",
    "radial_power_spectrum",
]

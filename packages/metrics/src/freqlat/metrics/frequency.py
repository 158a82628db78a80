"""Frequency-bias analysis: which frequencies do reconstructions lose, band by band and radially?

:class:`FrequencyAnalysis` accumulates, over batches of originals and the reconstructions of
any number of named models (tokenizers), dataset means of

- the MSE of every subband of a J-level Haar DWT (``LL``, ``LH1``, ``HL1``, ``HH1``, ``LH2``, ...;
  level 1 is the finest), from :func:`freqlat.wavelets.multilevel_band_mse`;
- the originals' mean energy in each band (:func:`freqlat.wavelets.band_energies`), so that
  :meth:`~FrequencyAnalysis.relative_band_errors` does not hide bands with little energy;
- radially averaged power spectra (:func:`freqlat.wavelets.radial_power_spectrum`, mean over
  images and colour channels) of the originals, of each model's reconstructions and, if given,
  of its latents.

This is the frequency-bias analysis the FA-VAE README motivates ("examining the frequency biases
of existing tokenizers"); see docs/reproduction.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from freqlat.wavelets import (
    BAND_NAMES,
    band_energies,
    band_names,
    max_levels,
    multilevel_band_mse,
    radial_frequencies,
    radial_power_spectrum,
)


def _add(totals: dict[str, float], values: Mapping[str, Tensor], weight: float) -> None:
    for key, value in values.items():
        totals[key] = totals.get(key, 0.0) + float(value.sum()) * weight


def _spectrum_sum(x: Tensor) -> Tensor:
    """Sum over images of the channel-averaged radial power spectrum (float64, on the CPU)."""
    return radial_power_spectrum(x).mean(dim=1).sum(dim=0).cpu()


def _accumulate(sums: dict[str, Tensor], name: str, value: Tensor) -> None:
    sums[name] = value if name not in sums else sums[name] + value


class FrequencyAnalysis:
    """Dataset means of the band errors, band energies and power spectra of named models.

    Call :meth:`update` with each batch of originals and every model's reconstructions (and
    latents) of it. Spectra are ``(R,)`` float64 tensors over :attr:`frequencies` (cycles per
    pixel, DC to Nyquist); each latent spectrum has its own frequency axis in
    :attr:`latent_frequencies` (latents are smaller than images).
    """

    def __init__(self, levels: int = 3) -> None:
        self.levels = levels
        self.num_images = 0
        self.frequencies: Tensor | None = None
        self.latent_frequencies: dict[str, Tensor] = {}
        self._error_sums: dict[str, dict[str, float]] = {}
        self._energy_sums: dict[str, float] = {}
        self._spectrum_sums: dict[str, Tensor] = {}  # "" holds the originals'
        self._latent_sums: dict[str, Tensor] = {}

    @property
    def bands(self) -> list[str]:
        """Band names, ``LL`` first, then the detail bands from the finest level."""
        return band_names(self.levels)

    @torch.no_grad()
    def update(
        self,
        images: Tensor,
        recons: Mapping[str, Tensor],
        latents: Mapping[str, Tensor] | None = None,
    ) -> None:
        """Add a batch: originals N x 3 x H x W and each model's reconstructions (same shape),
        all in [-1, 1]; ``latents`` (N x C x h x w per model) for the latent spectra."""
        images = images.float()
        useful = max_levels(min(images.shape[-2:]), "haar")
        if self.levels > useful:  # dwt2 would compute them, but their bands are boundary effects
            raise ValueError(
                f"{self.levels} DWT levels need larger images: {tuple(images.shape[-2:])} allows "
                f"{useful} useful level(s) (pywt.dwt_max_level)"
            )
        count = images.shape[0]
        self.num_images += count
        _add(self._energy_sums, band_energies(images, self.levels), 1.0)
        _accumulate(self._spectrum_sums, "", _spectrum_sum(images))
        self.frequencies = radial_frequencies(*images.shape[-2:])
        for name, recon in recons.items():
            errors = self._error_sums.setdefault(name, {})
            _add(errors, multilevel_band_mse(images, recon.float(), self.levels), count)
            _accumulate(self._spectrum_sums, name, _spectrum_sum(recon.float()))
        for name, latent in (latents or {}).items():
            _accumulate(self._latent_sums, name, _spectrum_sum(latent.float()))
            self.latent_frequencies.setdefault(name, radial_frequencies(*latent.shape[-2:]))

    def _require_images(self) -> int:
        if self.num_images == 0:
            raise ValueError("no images were given")
        return self.num_images

    @property
    def band_errors(self) -> dict[str, dict[str, float]]:
        """Per model: the mean MSE of every band."""
        n = self._require_images()
        return {
            name: {band: sums[band] / n for band in self.bands}
            for name, sums in self._error_sums.items()
        }

    @property
    def original_band_energy(self) -> dict[str, float]:
        """The originals' mean energy (mean squared coefficient) in every band."""
        n = self._require_images()
        return {band: self._energy_sums[band] / n for band in self.bands}

    @property
    def original_spectrum(self) -> Tensor:
        """Mean radial power spectrum of the originals."""
        return self._spectrum_sums[""] / self._require_images()

    @property
    def recon_spectra(self) -> dict[str, Tensor]:
        """Per model: the mean radial power spectrum of its reconstructions."""
        n = self._require_images()
        return {name: s / n for name, s in self._spectrum_sums.items() if name}

    @property
    def latent_spectra(self) -> dict[str, Tensor]:
        """Per model: the mean radial power spectrum of its latents (mean over channels)."""
        n = self._require_images()
        return {name: s / n for name, s in self._latent_sums.items()}

    def relative_band_errors(self) -> dict[str, dict[str, float]]:
        """Band MSE divided by the originals' mean energy in that band (NaN for an empty band)."""
        energy = self.original_band_energy
        return {
            name: {
                band: errors[band] / energy[band] if energy[band] > 0 else float("nan")
                for band in self.bands
            }
            for name, errors in self.band_errors.items()
        }

    def level_errors(self) -> dict[str, dict[str, float]]:
        """Per model: ``LL`` and the mean MSE of the three detail bands of each level."""
        table = {}
        for name, errors in self.band_errors.items():
            row = {"LL": errors["LL"]}
            for level in range(1, self.levels + 1):
                row[f"level {level}"] = sum(errors[f"{b}{level}"] for b in BAND_NAMES) / 3
            table[name] = row
        return table

    def spectral_ratios(self) -> dict[str, Tensor]:
        """Reconstruction power over original power at every frequency, per model."""
        original = self.original_spectrum
        return {name: spectrum / original for name, spectrum in self.recon_spectra.items()}

"""Radially averaged power spectra and per-band energies."""

import math

import pytest
import torch

from freqlat.wavelets import band_energies, radial_frequencies, radial_power_spectrum


def test_sinusoid_peaks_at_its_frequency():
    size, cycles = 64, 10
    grid = torch.arange(size, dtype=torch.float64)
    wave = torch.cos(2 * math.pi * cycles * grid / size).expand(size, size)
    spectrum = radial_power_spectrum(wave[None, None])
    assert spectrum.shape == (1, 1, size // 2 + 1)
    assert int(spectrum[0, 0].argmax()) == cycles
    assert radial_frequencies(size)[cycles] == pytest.approx(cycles / size)


def test_white_noise_has_a_flat_spectrum_at_its_variance():
    sigma = 0.5
    noise = sigma * torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    spectrum = radial_power_spectrum(noise).mean(dim=(0, 1))
    # bins 4.. average hundreds of coefficients each
    torch.testing.assert_close(
        spectrum[4:], torch.full_like(spectrum[4:], sigma**2), rtol=0.15, atol=0
    )


def test_constant_image_has_only_dc_power():
    spectrum = radial_power_spectrum(torch.full((1, 1, 16, 24), 0.5))
    assert spectrum.shape == (1, 1, 9)
    assert spectrum[0, 0, 0] == pytest.approx(0.25 * 16 * 24)
    assert torch.all(spectrum[0, 0, 1:] < 1e-20)


def test_radial_power_spectrum_rejects_non_images():
    with pytest.raises(ValueError, match="4-D"):
        radial_power_spectrum(torch.zeros(16, 16))


def test_band_energies_weighted_by_coefficient_count_sum_to_image_energy(photographs):
    energies = band_energies(photographs, levels=2)
    assert list(energies) == ["LL", "LH1", "HL1", "HH1", "LH2", "HL2", "HH2"]
    total = energies["LL"] / 16
    total = total + sum(energies[f"{b}1"] for b in ("LH", "HL", "HH")) / 4
    total = total + sum(energies[f"{b}2"] for b in ("LH", "HL", "HH")) / 16
    torch.testing.assert_close(total, photographs.square().mean(dim=(1, 2, 3)))


def test_photographs_concentrate_energy_in_low_frequencies(photographs):
    spectrum = radial_power_spectrum(photographs).mean(dim=(0, 1))
    assert spectrum[1:8].mean() > 100 * spectrum[-32:].mean()

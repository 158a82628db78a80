"""The high-frequency power ratio on images whose spectra are known in closed form."""

import math

import pytest
import torch

from freqlat.metrics import RadialSpectrum, high_band, high_frequency_ratio

SIZE = 16  # S: bins r = 0 ... 8 at r / 16 cycles per pixel; the high band is r = 5 ... 8


def _stripes(amplitude: float, k: int, count: int = 2) -> torch.Tensor:
    """``amplitude * cos(2 pi k w / S)`` along the width, the same in every row and channel."""
    w = torch.arange(SIZE, dtype=torch.float64)
    row = amplitude * torch.cos(2 * math.pi * k * w / SIZE)
    return row.expand(count, 3, SIZE, SIZE).clone()


def _bin_count(r: int) -> int:
    """How many FFT coefficients have a radius that rounds to r (in units of 1 / S)."""
    freqs = [(i if i <= SIZE // 2 else i - SIZE) / SIZE for i in range(SIZE)]
    return sum(round(math.hypot(fy, fx) * SIZE) == r for fy in freqs for fx in freqs)


def _spectrum(images: torch.Tensor) -> RadialSpectrum:
    spectrum = RadialSpectrum()
    spectrum.update(images)
    return spectrum


def test_a_cosine_puts_its_power_in_its_own_bin():
    # |FFT2| of a cos(2 pi k w / S) is a S^2 / 2 at (0, +-k): two coefficients of power
    # (a S^2 / 2)^2 / S^2 = a^2 S^2 / 4, averaged over the bin's coefficients.
    amplitude, k = 0.7, 6
    spectrum = _spectrum(_stripes(amplitude, k)).compute()
    expected = torch.zeros(SIZE // 2 + 1, dtype=torch.float64)
    expected[k] = 2 * amplitude**2 * SIZE**2 / 4 / _bin_count(k)
    torch.testing.assert_close(spectrum, expected, atol=1e-12, rtol=1e-12)
    # at Nyquist (k = S / 2) the two coefficients are one: power a^2 S^2
    nyquist = _spectrum(_stripes(amplitude, SIZE // 2)).compute()
    assert nyquist[SIZE // 2] == pytest.approx(amplitude**2 * SIZE**2 / _bin_count(SIZE // 2))


def test_the_ratio_is_the_squared_amplitude_ratio_in_the_high_band_only():
    reference = _spectrum(_stripes(1.0, 6) + _stripes(0.3, 8))
    samples = _spectrum(_stripes(0.5, 6) + _stripes(0.15, 8))
    assert high_frequency_ratio(samples, reference) == pytest.approx(0.25, rel=1e-12)
    # low frequencies (up to a quarter cycle per pixel, r <= S / 4) and offsets do not count
    with_low = _stripes(0.5, 6) + _stripes(0.15, 8) + _stripes(0.9, SIZE // 4) + 0.2
    assert high_frequency_ratio(_spectrum(with_low), reference) == pytest.approx(0.25, rel=1e-12)
    assert high_frequency_ratio(reference, reference) == 1.0
    mask = high_band(reference.frequencies)
    assert mask.tolist() == [False] * 5 + [True] * 4


def test_uint8_images_are_measured_as_u_over_127_5_minus_1():
    w = torch.arange(SIZE)
    nyquist = (1 - 2 * (w % 2)).expand(2, 3, SIZE, SIZE)  # (-1)^w
    quarter = torch.tensor([1, 0, -1, 0]).repeat(SIZE // 4).expand(2, 3, SIZE, SIZE)
    reference = (128 + 100 * nyquist).to(torch.uint8)
    samples = (128 + 50 * nyquist + 60 * quarter).to(torch.uint8)
    ratio = high_frequency_ratio(_spectrum(samples), _spectrum(reference))
    assert ratio == pytest.approx(0.25, rel=1e-12)
    as_float = _spectrum(reference.double() / 127.5 - 1).compute()
    torch.testing.assert_close(_spectrum(reference).compute(), as_float, rtol=0, atol=0)


def test_batches_and_merged_sets_give_the_spectrum_of_the_whole_set():
    images = torch.rand(5, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    whole = _spectrum(images).compute()
    batched, other = RadialSpectrum(), RadialSpectrum()
    batched.update(images[:2])
    other.update(images[2:])
    batched.merge(other)
    torch.testing.assert_close(batched.compute(), whole, rtol=1e-12, atol=0)
    assert int(batched.count) == 5


def test_sets_of_other_sizes_are_refused():
    small = _spectrum(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ in size"):
        high_frequency_ratio(small, _spectrum(_stripes(1.0, 6)))
    with pytest.raises(ValueError, match="one size"):
        small.update(torch.zeros(1, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match=r"no power above 0\.25"):
        high_frequency_ratio(small, small)
    with pytest.raises(ValueError, match="empty"):
        RadialSpectrum().compute()

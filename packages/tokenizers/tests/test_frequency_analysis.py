"""The frequency-bias analysis of tokenizers: band tables and spectra against closed forms."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from freqlat.tokenizers.analysis import analyse_tokenizers
from freqlat.wavelets import band_energies, multilevel_band_mse, radial_power_spectrum


class FixedMap(nn.Module):
    """A stand-in tokenizer: recon = fn(x), latent = 4x4 average pooling of x."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, sample=True):
        return SimpleNamespace(recon=self.fn(x), latent=F.avg_pool2d(x, 4))


def _images(count: int = 5, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    smooth = F.interpolate(
        torch.rand(count, 3, size // 4, size // 4, generator=generator), size=size
    )
    return (smooth + 0.2 * torch.rand(count, 3, size, size, generator=generator)).clamp(
        0, 1
    ) * 2 - 1


def test_identity_has_zero_band_errors_and_unit_spectral_ratio():
    analysis = analyse_tokenizers({"identity": FixedMap(lambda x: x)}, [_images()], levels=2)
    assert analysis.bands == ["LL", "LH1", "HL1", "HH1", "LH2", "HL2", "HH2"]
    assert all(value == 0 for value in analysis.band_errors["identity"].values())
    torch.testing.assert_close(
        analysis.spectral_ratios()["identity"], torch.ones_like(analysis.frequencies)
    )


def test_halving_the_image_costs_a_quarter_of_every_band_and_of_every_frequency():
    analysis = analyse_tokenizers({"half": FixedMap(lambda x: 0.5 * x)}, [_images()], levels=3)
    for value in analysis.relative_band_errors()["half"].values():
        assert value == pytest.approx(0.25, rel=1e-6)
    ratio = analysis.spectral_ratios()["half"]
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.25))


def test_batched_accumulation_equals_the_whole_set_at_once():
    images = _images(5)
    analysis = analyse_tokenizers(
        {"flip": FixedMap(lambda x: x.flip(-1))}, images.split([3, 2]), levels=2
    )
    assert analysis.num_images == 5
    expected = multilevel_band_mse(images, images.flip(-1), levels=2)
    for band, value in expected.items():
        assert analysis.band_errors["flip"][band] == pytest.approx(value.item(), rel=1e-5)
    energies = band_energies(images, levels=2)
    for band, value in energies.items():
        assert analysis.original_band_energy[band] == pytest.approx(value.mean().item(), rel=1e-5)
    torch.testing.assert_close(
        analysis.original_spectrum, radial_power_spectrum(images).mean(dim=(0, 1))
    )
    latent = F.avg_pool2d(images, 4)
    assert analysis.latent_frequencies["flip"].shape == (32 // 4 // 2 + 1,)
    torch.testing.assert_close(
        analysis.latent_spectra["flip"], radial_power_spectrum(latent).mean(dim=(0, 1))
    )
    level = analysis.level_errors()["flip"]
    mean_level_1 = sum(expected[b].item() for b in ("LH1", "HL1", "HH1")) / 3
    assert level["level 1"] == pytest.approx(mean_level_1, rel=1e-5)
    assert list(level) == ["LL", "level 1", "level 2"]


def test_bands_without_energy_get_no_relative_error():
    flat = torch.full((2, 3, 16, 16), 0.5)  # no detail energy at all
    analysis = analyse_tokenizers({"shift": FixedMap(lambda x: x + 0.25)}, [flat], levels=1)
    relative = analysis.relative_band_errors()["shift"]
    assert relative["LL"] == pytest.approx(0.25)  # (2 * 0.25)^2 / (2 * 0.5)^2
    assert all(relative[band] != relative[band] for band in ("LH1", "HL1", "HH1"))  # NaN

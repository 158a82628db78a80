"""FrequencyAnalysis: batched accumulation equals the closed forms over the whole set."""

import pytest
import torch
import torch.nn.functional as F

from freqlat.metrics import FrequencyAnalysis
from freqlat.wavelets import band_energies, multilevel_band_mse, radial_power_spectrum


def _images(count: int = 5, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    smooth = F.interpolate(
        torch.rand(count, 3, size // 4, size // 4, generator=generator), size=size
    )
    return (smooth + 0.2 * torch.rand(count, 3, size, size, generator=generator)).clamp(
        0, 1
    ) * 2 - 1


def test_batches_accumulate_to_the_means_over_the_whole_set():
    images = _images(5)
    analysis = FrequencyAnalysis(levels=2)
    for batch in images.split([3, 2]):
        analysis.update(batch, {"flip": batch.flip(-1)}, {"flip": F.avg_pool2d(batch, 4)})
    assert analysis.num_images == 5
    expected = multilevel_band_mse(images, images.flip(-1), levels=2)
    for band, value in expected.items():
        assert analysis.band_errors["flip"][band] == pytest.approx(value.item(), rel=1e-5)
    for band, value in band_energies(images, levels=2).items():
        assert analysis.original_band_energy[band] == pytest.approx(value.mean().item(), rel=1e-5)
    torch.testing.assert_close(
        analysis.original_spectrum, radial_power_spectrum(images).mean(dim=(0, 1))
    )
    torch.testing.assert_close(analysis.recon_spectra["flip"], analysis.original_spectrum)
    assert analysis.latent_frequencies["flip"].shape == (32 // 4 // 2 + 1,)
    torch.testing.assert_close(
        analysis.latent_spectra["flip"],
        radial_power_spectrum(F.avg_pool2d(images, 4)).mean(dim=(0, 1)),
    )


def test_an_empty_analysis_has_no_means():
    with pytest.raises(ValueError, match="no images"):
        _ = FrequencyAnalysis().band_errors

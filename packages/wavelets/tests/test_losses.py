"""band_mse (the FA-VAE README's Low/High columns), multi-level band errors, and the weighted loss."""

import pytest
import torch
from pytorch_wavelets import DWTForward

from freqlat.wavelets import WaveletLoss, band_mse, multilevel_band_mse


def _noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    return (x + sigma * noise).clamp(-1, 1)


@pytest.mark.parametrize("sigma", [0.01, 0.1, 0.5])
def test_recon_equals_low_plus_three_high_over_four_on_photographs(photographs, sigma):
    recon = _noisy(photographs, sigma)
    low, high = band_mse(recon, photographs)
    mse = torch.mean((recon - photographs) ** 2)
    torch.testing.assert_close((low + 3 * high) / 4, mse, rtol=1e-12, atol=0)


def test_identity_also_holds_between_different_photographs(photographs):
    shifted = photographs.roll(1, dims=0)
    low, high = band_mse(shifted, photographs)
    torch.testing.assert_close((low + 3 * high) / 4, torch.mean((shifted - photographs) ** 2))


def test_band_mse_matches_a_direct_pytorch_wavelets_computation(photographs):
    x, y = photographs.float(), _noisy(photographs, 0.1).float()
    dwt = DWTForward(J=1, wave="haar", mode="zero")
    (lx, (hx,)), (ly, (hy,)) = dwt(x), dwt(y)
    low, high = band_mse(x, y)
    torch.testing.assert_close(low, torch.mean((lx - ly) ** 2), rtol=1e-5, atol=0)
    torch.testing.assert_close(high, torch.mean((hx - hy) ** 2), rtol=1e-5, atol=0)


def test_band_mse_of_identical_images_is_zero(photographs):
    low, high = band_mse(photographs, photographs)
    assert low == 0 and high == 0


def test_band_mse_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        band_mse(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 6))
    with pytest.raises(ValueError, match="4-D"):
        band_mse(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))


def test_multilevel_band_mse_level_one_agrees_with_band_mse(photographs):
    recon = _noisy(photographs, 0.2)
    errors = multilevel_band_mse(recon, photographs, levels=1)
    low, high = band_mse(recon, photographs)
    torch.testing.assert_close(errors["LL"], low)
    torch.testing.assert_close((errors["LH1"] + errors["HL1"] + errors["HH1"]) / 3, high)


def test_multilevel_band_mse_preserves_energy_over_levels(photographs):
    recon = _noisy(photographs, 0.2)
    errors = multilevel_band_mse(recon, photographs, levels=3)
    # coefficient count of LL3 and level-j bands is 1/4**3 and 1/4**j of the pixel count
    weighted = errors["LL"] / 4**3
    for level in (1, 2, 3):
        weighted = weighted + sum(errors[f"{b}{level}"] for b in ("LH", "HL", "HH")) / 4**level
    torch.testing.assert_close(weighted, torch.mean((recon - photographs) ** 2))


def test_wavelet_loss_with_quarter_weights_is_pixel_mse(photographs):
    recon = _noisy(photographs, 0.3)
    loss = WaveletLoss(levels=1, ll_weight=0.25, detail_weights=0.25)
    torch.testing.assert_close(loss(recon, photographs), torch.mean((recon - photographs) ** 2))


def test_wavelet_loss_weights_each_band():
    x, y = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    loss = WaveletLoss(levels=2, ll_weight=0.5, detail_weights=[[1.0, 2.0, 3.0], 4.0])
    errors = multilevel_band_mse(x, y, levels=2)
    expected = (
        0.5 * errors["LL"]
        + errors["LH1"]
        + 2 * errors["HL1"]
        + 3 * errors["HH1"]
        + 4 * (errors["LH2"] + errors["HL2"] + errors["HH2"])
    )
    torch.testing.assert_close(loss(x, y), expected)


def test_wavelet_loss_zero_weights_drop_terms_and_gradients_flow():
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    loss = WaveletLoss(ll_weight=0.0, detail_weights=[[0.0, 0.0, 1.0]])
    assert set(loss.terms(x, torch.zeros_like(x))) == {"HH1"}
    loss(x, torch.zeros_like(x)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_wavelet_loss_rejects_bad_weight_tables():
    with pytest.raises(ValueError, match="one entry per level"):
        WaveletLoss(levels=2, detail_weights=[1.0])
    with pytest.raises(ValueError, match="LH, HL, HH"):
        WaveletLoss(levels=1, detail_weights=[[1.0, 2.0]])
    with pytest.raises(ValueError, match="positive int"):
        WaveletLoss(levels=0)

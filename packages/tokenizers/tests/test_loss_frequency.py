"""FA-VAE's frequency-aware terms: per-band wavelet loss identities and the mask-loss weight map."""

import pytest
import torch

from freqlat.tokenizers.losses import (
    AutoencoderLossConfig,
    FrequencyAwareLoss,
    FrequencyAwareLossConfig,
    detail_energy_weights,
    mask_loss,
    wavelet_band_loss,
)
from freqlat.tokenizers.losses import frequency as frequency_module
from freqlat.wavelets import band_mse


def _pair(size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=g) * 2 - 1, torch.rand(
        2, 3, size, size, generator=g
    )


def _config(**overrides):
    low = AutoencoderLossConfig(perceptual_weight=0.0)
    return FrequencyAwareLossConfig(low=low, low_vf=None, **overrides)


def test_equal_band_weights_give_the_pixel_squared_error_by_orthonormality():
    x, y = _pair()
    pixel = (x - y).pow(2).sum() / 2
    for levels in (1, 2, 3):
        terms = wavelet_band_loss(x, y, ll_weight=1.0, detail_weights=((1.0, 1.0, 1.0),) * levels)
        torch.testing.assert_close(terms["band_loss"], pixel)


def test_one_level_bands_reproduce_the_seed_low_high_columns():
    x, y = _pair()
    terms = wavelet_band_loss(x, y)
    coefficients_per_band = 3 * 8 * 8  # per image: C x H/2 x W/2
    low, high = band_mse(x, y)
    torch.testing.assert_close(terms["band_LL"] / coefficients_per_band, low)
    details = terms["band_LH1"] + terms["band_HL1"] + terms["band_HH1"]
    torch.testing.assert_close(details / (3 * coefficients_per_band), high)
    # MSE = (Low + 3 High) / 4; with weights 1/4 per band (sum/batch scaled) the loss is the MSE
    quarter = wavelet_band_loss(x, y, ll_weight=0.25, detail_weights=((0.25, 0.25, 0.25),))
    torch.testing.assert_close(quarter["band_loss"] / coefficients_per_band, (x - y).pow(2).mean())


def test_band_weights_select_bands_and_levels():
    x, y = _pair()
    terms = wavelet_band_loss(
        x, y, ll_weight=0.0, detail_weights=((0.0, 2.0, 0.0), (0.0, 0.0, 3.0)), distance="l1"
    )
    torch.testing.assert_close(terms["band_loss"], 2 * terms["band_HL1"] + 3 * terms["band_HH2"])


def test_flat_image_gives_a_uniform_weight_map_at_the_floor():
    flat = torch.full((2, 3, 16, 16), 0.3)
    for normalization in ("mean", "max"):
        for sigma in (0.0, 1.5):
            w = detail_energy_weights(
                flat, floor=0.2, normalization=normalization, blur_sigma=sigma
            )
            assert w.shape == (2, 1, 16, 16)
            torch.testing.assert_close(w, torch.full_like(w, 0.2))


def test_weight_map_is_heavier_on_texture_and_averages_one_with_mean_normalisation():
    torch.manual_seed(0)
    image = torch.zeros(1, 3, 16, 16)
    image[..., 8:] = torch.rand(1, 3, 16, 8) * 2 - 1  # texture on the right half only
    w = detail_energy_weights(image, floor=0.25, normalization="mean", clip=1e6)
    assert float(w[..., 8:].mean()) > float(w[..., :7].mean())
    torch.testing.assert_close(w[..., :7], torch.full_like(w[..., :7], 0.25))
    torch.testing.assert_close(w.mean(), torch.tensor(1.0))
    clipped = detail_energy_weights(image, floor=0.0, normalization="mean", clip=1.5)
    assert float(clipped.max()) <= 1.5
    peak = detail_energy_weights(image, floor=0.0, normalization="max")
    assert float(peak.max()) == pytest.approx(1.0)


def test_mask_loss_with_floor_one_is_the_plain_l1_sum():
    x, y = _pair()
    w = detail_energy_weights(y, floor=1.0)
    torch.testing.assert_close(mask_loss(x, y, w), (x - y).abs().sum() / 2)


def test_zero_weights_switch_the_image_terms_off_and_skip_their_work(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a switched-off term was computed")

    monkeypatch.setattr(frequency_module, "detail_energy_weights", forbidden)
    monkeypatch.setattr(frequency_module, "wavelet_band_loss", forbidden)
    loss = FrequencyAwareLoss(_config(), perceptual=None)
    x, y = _pair()
    terms = loss.image_terms(y, x)
    assert float(terms["loss"]) == 0.0 and set(terms) == {"loss"}


def test_image_terms_add_weighted_band_and_mask_losses():
    x, y = _pair()
    cfg = _config(band_weight=0.5, mask_weight=2.0, mask_floor=0.5)
    loss = FrequencyAwareLoss(cfg, perceptual=None)
    terms = loss.image_terms(y, x)
    band = wavelet_band_loss(x, y)["band_loss"]
    masked = mask_loss(x, y, detail_energy_weights(y, floor=0.5))
    torch.testing.assert_close(terms["loss"], 0.5 * band + 2.0 * masked)


def test_invalid_frequency_settings_raise_value_error():
    with pytest.raises(ValueError, match="perceptual_weight"):
        FrequencyAwareLoss(FrequencyAwareLossConfig(low_vf=None), perceptual=None)
    with pytest.raises(ValueError, match="9-channel"):
        FrequencyAwareLossConfig(high=AutoencoderLossConfig(perceptual_weight=1.0))
    with pytest.raises(ValueError, match="LH, HL, HH"):
        FrequencyAwareLossConfig(band_detail_weights=((1.0, 1.0),))
    with pytest.raises(ValueError, match="foundation"):
        FrequencyAwareLoss(FrequencyAwareLossConfig(), perceptual=torch.nn.Identity())
    with pytest.raises(ValueError, match="normalization"):
        detail_energy_weights(torch.zeros(1, 3, 8, 8), normalization="median")

"""Pins MSE, the band errors, PSNR and SSIM to their definitions and to scikit-image."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from freqlat.metrics import band_errors, dataset_psnr, psnr, recon_mse, ssim


def test_recon_equals_low_plus_three_high_over_four_on_real_photographs(photos, degraded):
    recon = float(recon_mse(photos, degraded))
    low, high = band_errors(photos, degraded)
    assert recon > 1e-3
    assert recon == pytest.approx((float(low) + 3 * float(high)) / 4, rel=1e-12)
    assert float(low) > float(high)  # blur removes detail; the low band moves less per pixel


def test_psnr_per_image_and_dataset_level_follow_their_formulas(photos, degraded):
    per_image_mse = (photos.double() - degraded.double()).square().flatten(1).mean(1)
    expected = 10 * torch.log10(4.0 / per_image_mse)
    torch.testing.assert_close(psnr(photos, degraded, data_range=2.0), expected)
    pooled = float(dataset_psnr(photos, degraded, data_range=2.0))
    assert pooled == pytest.approx(10 * math.log10(4.0 / float(per_image_mse.mean())), rel=1e-12)


def test_psnr_of_a_known_error():
    x = torch.zeros(1, 3, 8, 8)
    assert float(psnr(x, x + 0.1, data_range=2.0)[0]) == pytest.approx(10 * math.log10(4 / 0.01))


def test_ssim_matches_scikit_image_per_image(photos, degraded):
    ours = ssim(photos, degraded, data_range=2.0)
    for i in range(photos.shape[0]):
        reference = structural_similarity(
            photos[i].double().numpy(),
            degraded[i].double().numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=2.0,
            channel_axis=0,
        )
        assert float(ours[i]) == pytest.approx(reference, abs=1e-4)
        assert float(ours[i]) == pytest.approx(reference, abs=1e-10)


def test_ssim_of_identical_images_is_one(photos):
    np.testing.assert_allclose(ssim(photos, photos, data_range=2.0).numpy(), 1.0, rtol=1e-12)


def test_pixel_metrics_reject_bad_input(photos):
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        recon_mse(photos * 2, photos)
    with pytest.raises(ValueError, match="float"):
        band_errors((photos * 127).to(torch.uint8), photos)
    with pytest.raises(ValueError, match="same shape"):
        recon_mse(photos, photos[:2])
    with pytest.raises(ValueError, match="data_range"):
        psnr(photos, photos, data_range=1.0)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(photos[..., :8, :8], photos[..., :8, :8], data_range=2.0)

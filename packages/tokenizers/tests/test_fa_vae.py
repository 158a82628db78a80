"""FA-VAE's wavelet split and merge around its two branches."""

import torch
import torch.nn.functional as F

from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.types import BranchOutput, DiagonalGaussian
from freqlat.wavelets import haar_dwt2


def _identity_branch(branch_input, downsample):
    """A branch that reconstructs its input perfectly, with a placeholder latent of latent size."""
    latent = branch_input[:, :1, ::downsample, ::downsample]
    zeros = torch.zeros_like(latent)
    return BranchOutput(branch_input, branch_input, DiagonalGaussian(zeros, zeros), latent)


def test_split_feeds_each_branch_its_scaled_band(smooth_images):
    model = create_tokenizer("fa-vae-f16d32-tiny")
    x = smooth_images[:, :, :32, :32]
    low_input, high_input = model.split(x)
    ll, bands = haar_dwt2(x)
    assert low_input.shape == (2, 3, 32, 32) and high_input.shape == (2, 9, 16, 16)
    # Colour-major channels: red LH, HL, HH come first.
    torch.testing.assert_close(high_input[:, :3], bands[:, 0] / 2)
    expected_low = F.interpolate(ll / 2, size=(32, 32), mode="bicubic", align_corners=False)
    torch.testing.assert_close(low_input, expected_low)


def test_identity_branches_give_back_the_image_up_to_the_bicubic_round_trip(smooth_images):
    model = create_tokenizer("fa-vae-f16d64-tiny")
    model.low.reconstruct = lambda x, sample=True, generator=None: _identity_branch(x, 16)
    model.high.reconstruct = lambda x, sample=True, generator=None: _identity_branch(x, 8)
    x = smooth_images[:, :, :32, :32].double()
    recon = model(x).recon
    ll, bands = haar_dwt2(x)
    ll_hat, bands_hat = haar_dwt2(recon)
    # Detail bands pass through exactly; LL only goes through the published bicubic up/down.
    torch.testing.assert_close(bands_hat, bands, rtol=0, atol=1e-12)
    up = F.interpolate(ll / 2, size=(32, 32), mode="bicubic", align_corners=False)
    round_trip = 2 * F.interpolate(up, size=(16, 16), mode="bicubic", align_corners=False)
    torch.testing.assert_close(ll_hat, round_trip, rtol=0, atol=1e-12)


def test_merge_inverts_the_wavelet_split_exactly(smooth_images):
    model = create_tokenizer("fa-vae-f16d32-tiny")
    x = smooth_images[:, :, :32, :32].double()
    ll, bands = haar_dwt2(x)
    torch.testing.assert_close(model.compose(ll, bands), x, rtol=0, atol=1e-12)


def test_joint_latent_is_high_then_low_and_decodes_per_branch(smooth_images):
    model = create_tokenizer("fa-vae-f16d32-tiny").eval()
    x = smooth_images[:, :, :32, :32]
    with torch.no_grad():
        posterior = model.encode(x)
        low_input, high_input = model.split(x)
        high_mean = model.high.encode(high_input).mean
        low_mean = model.low.encode(low_input).mean
        torch.testing.assert_close(posterior.mean, torch.cat([high_mean, low_mean], dim=1))
        high, low = model.split_latent(posterior.mean)
        expected = model.merge(model.low.decode(low), model.high.decode(high))
        torch.testing.assert_close(model.decode(posterior.mean), expected)
    assert model.band_scale == 2.0 and (model.high_channels, model.low_channels) == (8, 24)

"""Band layout helpers and FA-VAE's split/merge scale convention."""

import pytest
import torch
from pytorch_wavelets import DWTForward

from freqlat.wavelets import (
    band_names,
    bands_to_channels,
    channels_to_bands,
    haar_dwt2,
    haar_merge,
    haar_split,
)


def test_bands_to_channels_is_colour_major():
    high = torch.arange(2 * 3 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 3, 2, 2)
    channels = bands_to_channels(high)
    assert channels.shape == (2, 9, 2, 2)
    for colour in range(3):
        for band in range(3):  # LH, HL, HH
            torch.testing.assert_close(channels[:, 3 * colour + band], high[:, colour, band])


def test_band_layout_round_trip():
    high = torch.randn(2, 4, 3, 5, 6)
    torch.testing.assert_close(channels_to_bands(bands_to_channels(high)), high, rtol=0, atol=0)
    channels = torch.randn(2, 9, 5, 6)
    torch.testing.assert_close(bands_to_channels(channels_to_bands(channels)), channels)


def test_band_layout_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="multiple of 3"):
        channels_to_bands(torch.zeros(1, 8, 4, 4))
    with pytest.raises(ValueError, match=r"N x C x 3 x h x w"):
        bands_to_channels(torch.zeros(1, 3, 4, 4, 4))


def test_haar_split_scales_both_bands_by_half(photographs):
    x = photographs.float()
    low, high = haar_split(x)
    ref_low, (ref_high,) = DWTForward(J=1, wave="haar", mode="zero")(x)
    torch.testing.assert_close(low, ref_low / 2, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(high, bands_to_channels(ref_high) / 2, rtol=1e-6, atol=1e-6)
    assert high.shape == (3, 9, 128, 128)
    # LL/2 of a [-1, 1] image lies in [-1, 1]; the detail bands / 2 within [-1, 1] as well
    assert low.abs().max() <= 1 + 1e-6 and high.abs().max() <= 1 + 1e-6


def test_haar_merge_inverts_split_exactly(photographs):
    torch.testing.assert_close(
        haar_merge(*haar_split(photographs)), photographs, rtol=0, atol=1e-12
    )


def test_haar_merge_rejects_branches_of_different_images():
    low, high = haar_split(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="do not come from one image"):
        haar_merge(low, high[..., :2, :])
    with pytest.raises(ValueError, match="do not come from one image"):
        haar_merge(low[:, :2], high)


def test_band_names_order_matches_levels():
    assert band_names(2) == ["LL", "LH1", "HL1", "HH1", "LH2", "HL2", "HH2"]


def test_split_low_band_is_the_haar_ll_band():
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(haar_split(x, scale=1.0)[0], haar_dwt2(x)[0])

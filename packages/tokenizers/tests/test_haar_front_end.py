"""The two-level Haar front end: pytorch_wavelets' transform, the band scales, the 48-channel
layout, and perfect reconstruction through identity-like learned convs."""

import pytest
import torch
from pytorch_wavelets import DWTForward

from freqlat.tokenizers import HaarBands, HaarFrontEnd, HaarFrontEndConfig


def _images(n=2, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_split_is_pytorch_wavelets_two_level_haar_with_the_authors_scales():
    x = _images()
    bands = HaarFrontEnd(HaarFrontEndConfig()).split(x)
    ll2, (h1, h2) = DWTForward(J=2, wave="haar", mode="zero")(x)
    # the author views each N x 3 x 3 x h x w detail tensor as N x 9 x h x w (colour-major)
    torch.testing.assert_close(bands.level1, h1.reshape(2, 9, 8, 8) / 2, rtol=0, atol=1e-6)
    torch.testing.assert_close(bands.level2, h2.reshape(2, 9, 4, 4) / 4, rtol=0, atol=1e-6)
    torch.testing.assert_close(bands.low, ll2 / 4, rtol=0, atol=1e-6)


def test_band_scales_bring_a_constant_image_to_its_value():
    # orthonormal Haar: LL2 of a constant c is 4c, details vanish; /4 gives c back
    bands = HaarFrontEnd(HaarFrontEndConfig()).split(torch.full((1, 3, 8, 8), 0.5))
    torch.testing.assert_close(bands.low, torch.full((1, 3, 2, 2), 0.5))
    assert not bands.level1.any() and not bands.level2.any()


@pytest.mark.parametrize("layout", ["var", "ldm"])
def test_merge_inverts_split(layout):
    front_end = HaarFrontEnd(HaarFrontEndConfig(layout=layout))
    x = _images()
    torch.testing.assert_close(front_end.merge(front_end.split(x)), x, rtol=0, atol=1e-6)


def _identity_like(front_end):
    """Stride-2 convs that move each 2 x 2 block of every level-1 channel into 4 channels."""
    with torch.no_grad():
        for conv in (front_end.down, front_end.up):
            conv.weight.zero_()
            conv.bias.zero_()
        for channel in range(9):
            for di in (0, 1):
                for dj in (0, 1):
                    slot = 4 * channel + 2 * di + dj
                    front_end.down.weight[slot, channel, di, dj] = 1.0
                    front_end.up.weight[slot, channel, di, dj] = 1.0  # in x out x kh x kw


def test_var_layout_reconstructs_perfectly_with_identity_like_convs():
    front_end = HaarFrontEnd(HaarFrontEndConfig(layout="var"))
    _identity_like(front_end)
    x = _images(size=32)
    coefficients = front_end.encode(x)
    assert coefficients.shape == (2, 48, 8, 8)
    bands = front_end.split(x)
    embedding, level2, low = front_end.unpack(coefficients)
    assert torch.equal(level2, bands.level2) and torch.equal(low, bands.low)
    # channel 4c + 2di + dj holds level-1 channel c at (2i + di, 2j + dj)
    assert torch.equal(embedding[:, 4 * 5 + 2 * 1 + 0], bands.level1[:, 5, 1::2, 0::2])
    torch.testing.assert_close(front_end.decode(coefficients), x, rtol=0, atol=1e-6)


def test_ldm_layout_has_the_authors_convs_and_shapes():
    front_end = HaarFrontEnd(HaarFrontEndConfig(layout="ldm"))
    shapes = {k: tuple(v.shape) for k, v in front_end.state_dict().items() if k.endswith("weight")}
    assert shapes == {
        "down.weight": (9, 9, 3, 3),
        "down_mix.weight": (36, 9, 1, 1),
        "up.weight": (36, 36, 4, 4),
        "up_mix.weight": (9, 36, 1, 1),
    }
    assert (front_end.down.stride, front_end.down.padding) == ((2, 2), (1, 1))
    assert (front_end.up.stride, front_end.up.padding) == ((2, 2), (1, 1))
    x = _images(size=32)
    coefficients = front_end.encode(x)
    assert coefficients.shape == (2, 48, 8, 8) and front_end.decode(coefficients).shape == x.shape
    level1 = front_end.unembed_level1(front_end.embed_level1(front_end.split(x).level1))
    assert level1.shape == (2, 9, 16, 16)


def test_decode_takes_the_parts_from_their_channels():
    front_end = HaarFrontEnd(HaarFrontEndConfig(layout="var"))
    with torch.no_grad():
        front_end.up.weight.zero_()
        front_end.up.bias.zero_()
    bands = front_end.split(_images(size=16))
    coefficients = torch.cat([torch.randn(2, 36, 4, 4), bands.level2, bands.low], dim=1)
    expected = front_end.merge(HaarBands(torch.zeros(2, 9, 8, 8), bands.level2, bands.low))
    torch.testing.assert_close(front_end.decode(coefficients), expected, rtol=0, atol=0)


def test_bad_inputs_are_clear_errors():
    front_end = HaarFrontEnd(HaarFrontEndConfig())
    with pytest.raises(ValueError, match=r"H and W divisible by 4, got \(1, 3, 18, 16\)"):
        front_end.split(torch.zeros(1, 3, 18, 16))
    with pytest.raises(ValueError, match=r"expected coefficients N x 48 x h x w"):
        front_end.decode(torch.zeros(1, 47, 4, 4))
    with pytest.raises(ValueError, match="unknown front-end layout 'vq'"):
        HaarFrontEnd(HaarFrontEndConfig(layout="vq"))

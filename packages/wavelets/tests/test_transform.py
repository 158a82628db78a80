"""dwt2/idwt2: parity with pywt (float64) and pytorch_wavelets, reconstruction, Parseval, errors."""

import numpy as np
import pytest
import pywt
import torch
from pytorch_wavelets import DWTForward, DWTInverse

from freqlat.wavelets import MODES, dwt2, haar_dwt2, haar_idwt2, idwt2, max_levels

WAVELETS = ["haar", "db2", "sym3", "coif1", "bior2.2"]
ORTHONORMAL = ["haar", "db2", "sym3", "coif1"]
SIZES = [(32, 32), (33, 27)]


def _random(shape, dtype=torch.float64, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wave", WAVELETS)
def test_matches_pywt_in_float64_for_every_level(wave, mode, size):
    x = _random((2, 3, *size))
    for levels in range(1, min(4, max_levels(min(size), wave)) + 1):
        low, highs = dwt2(x, wave, levels, mode)
        ref = pywt.wavedec2(x.numpy(), wave, mode=mode, level=levels, axes=(-2, -1))
        np.testing.assert_allclose(low.numpy(), ref[0], rtol=0, atol=1e-10)
        for level, high in enumerate(highs, start=1):
            # pywt orders details (horizontal, vertical, diagonal) = our (LH, HL, HH)
            np.testing.assert_allclose(high.numpy(), np.stack(ref[-level], axis=2), atol=1e-10)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wave", WAVELETS)
def test_matches_pytorch_wavelets_in_float32(wave, mode, size):
    x = _random((2, 3, *size), torch.float32)
    levels = min(3, max_levels(min(size), wave))
    low, highs = dwt2(x, wave, levels, mode)
    ref_low, ref_highs = DWTForward(J=levels, wave=wave, mode=mode)(x)
    assert low.shape == ref_low.shape
    assert _rel_err(low, ref_low) <= 1e-6
    for high, ref in zip(highs, ref_highs, strict=True):
        assert high.shape == ref.shape
        assert _rel_err(high, ref) <= 1e-6
    recon = idwt2(low, highs, wave, mode)
    ref_recon = DWTInverse(wave=wave, mode=mode)((ref_low, ref_highs))
    assert recon.shape == ref_recon.shape
    assert _rel_err(recon, ref_recon) <= 1e-6


@pytest.mark.parametrize("size", [(31, 45), (1, 2), (7, 8)])
def test_haar_zero_mode_output_shapes_match_pytorch_wavelets_for_odd_sizes(size):
    x = _random((1, 2, *size), torch.float32)
    low, high = haar_dwt2(x)
    ref_low, (ref_high,) = DWTForward(J=1, wave="haar", mode="zero")(x)
    assert low.shape == ref_low.shape and high.shape == ref_high.shape
    assert _rel_err(low, ref_low) <= 1e-6 and _rel_err(high, ref_high) <= 1e-6
    recon = haar_idwt2(low, high)
    assert recon.shape == DWTInverse(wave="haar", mode="zero")((ref_low, [ref_high])).shape
    torch.testing.assert_close(recon[..., : size[0], : size[1]], x, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_haar_low_precision_stays_in_dtype_and_close_to_float32(dtype):
    x = _random((2, 3, 32, 32), torch.float32)
    low, high = haar_dwt2(x.to(dtype))
    assert low.dtype == dtype and high.dtype == dtype
    ref_low, ref_high = haar_dwt2(x)
    eps = torch.finfo(dtype).eps
    assert _rel_err(low, ref_low) <= 2 * eps and _rel_err(high, ref_high) <= 2 * eps
    recon = haar_idwt2(low, high)
    assert recon.dtype == dtype
    assert _rel_err(recon, x) <= 4 * eps


def test_haar_keeps_input_dtype_under_autocast():
    x = _random((1, 3, 16, 16), torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, highs = dwt2(x)
        recon = idwt2(low, highs)
    assert low.dtype == torch.float32 and recon.dtype == torch.float32
    torch.testing.assert_close(recon, x, rtol=0, atol=1e-6)


def test_haar_accepts_channels_last_input():
    x = _random((2, 3, 16, 20), torch.float32)
    low, high = haar_dwt2(x.contiguous(memory_format=torch.channels_last))
    ref_low, ref_high = haar_dwt2(x)
    torch.testing.assert_close(low, ref_low, rtol=0, atol=1e-6)
    torch.testing.assert_close(high, ref_high, rtol=0, atol=1e-6)
    recon = haar_idwt2(low.contiguous(memory_format=torch.channels_last), high)
    torch.testing.assert_close(recon, x, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wave", WAVELETS)
def test_perfect_reconstruction(wave, mode):
    x = _random((2, 3, 29, 34))
    levels = min(3, max_levels(29, wave))
    recon = idwt2(*dwt2(x, wave, levels, mode), wave, mode)
    torch.testing.assert_close(recon[..., :29, :34], x, rtol=0, atol=1e-10)


@pytest.mark.parametrize("wave", ORTHONORMAL)
def test_parseval_for_orthonormal_wavelets(wave):
    x = _random((2, 3, 64, 64))
    low, highs = dwt2(x, wave, levels=3, mode="periodization")
    energy = low.square().sum() + sum(h.square().sum() for h in highs)
    # pywt's filters themselves are orthonormal only to ~1e-11 (sym3)
    torch.testing.assert_close(energy, x.square().sum(), rtol=1e-10, atol=0)


def test_haar_zero_mode_parseval_on_even_sizes():
    x = _random((2, 3, 32, 48))
    low, highs = dwt2(x, "haar", levels=4)
    energy = low.square().sum() + sum(h.square().sum() for h in highs)
    torch.testing.assert_close(energy, x.square().sum(), rtol=1e-12, atol=0)


def test_gradcheck_haar_forward_and_inverse():
    x = _random((1, 2, 6, 5)).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: haar_dwt2(t), (x,))
    low = _random((1, 2, 3, 4), seed=1).requires_grad_()
    high = _random((1, 2, 3, 3, 4), seed=2).requires_grad_()
    assert torch.autograd.gradcheck(haar_idwt2, (low, high))


@pytest.mark.parametrize("wave", ["haar", "db2"])
@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_multilevel(wave, mode):
    x = _random((1, 1, 12, 13)).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: dwt2(t, wave, 2, mode)[1][0], (x,), fast_mode=True)

    def round_trip(t):
        low, highs = dwt2(t, wave, 2, mode)
        return idwt2(low, highs, wave, mode)

    assert torch.autograd.gradcheck(round_trip, (x,), fast_mode=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((torch.zeros(3, 8, 8),), "4-D"),
        ((torch.zeros(1, 3, 8, 8, dtype=torch.int64),), "floating-point"),
        (([[1.0]],), "torch.Tensor"),
        ((torch.zeros(1, 3, 8, 8), "nosuchwave"), "unknown wavelet"),
        ((torch.zeros(1, 3, 8, 8), "morl"), "unknown wavelet"),
        ((torch.zeros(1, 3, 8, 8), "haar", 1, "wrap"), "unknown mode"),
        ((torch.zeros(1, 3, 8, 8), "haar", 0), "positive int"),
    ],
)
def test_dwt2_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        dwt2(*args)


def test_idwt2_rejects_band_lists_that_do_not_match():
    low, highs = dwt2(torch.zeros(2, 3, 16, 16), levels=2)
    with pytest.raises(ValueError, match="non-empty list"):
        idwt2(low, [])
    with pytest.raises(ValueError, match="non-empty list"):
        idwt2(low, highs[0])
    with pytest.raises(ValueError, match=r"N x C x 3 x h x w"):
        idwt2(low, [highs[0][:, :, :2], highs[1]])
    with pytest.raises(ValueError, match="batch/channels"):
        idwt2(low, [highs[0][:, :2], highs[1]])
    with pytest.raises(ValueError, match="spatially"):
        idwt2(low, [highs[1], highs[0]])
    with pytest.raises(ValueError, match="float64"):
        idwt2(low, [highs[0].double(), highs[1]])

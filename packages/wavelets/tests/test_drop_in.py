"""Drop-in fidelity with pytorch_wavelets: contiguous outputs, the filters that are passed, levels.

Each test pins a behaviour a caller of ``DWTForward``/``DWTInverse`` relies on when swapping in
``dwt2``/``idwt2``: outputs that ``.view`` works on, a ``pywt.Wavelet`` or filter tuple used with
its own coefficients, and more levels than pywt's maximum computed (with pywt's warning).
"""

import warnings

import numpy as np
import pytest
import pywt
import torch
from pytorch_wavelets import DWTForward, DWTInverse

from freqlat.wavelets import (
    MODES,
    bands_to_channels,
    channels_to_bands,
    dwt2,
    haar_dwt2,
    haar_idwt2,
    haar_merge,
    haar_split,
    idwt2,
    max_levels,
)

NON_HAAR = ["db2", "sym3", "coif1", "bior2.2"]


def _random(shape, dtype=torch.float32, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _assert_close_to(ours, reference, tol=1e-6):
    assert ours.shape == reference.shape
    scale = reference.abs().max().clamp_min(1e-12)
    assert float((ours - reference).abs().max() / scale) <= tol


def _assert_matches_pytorch_wavelets(x, wave, levels, mode, torch_wave=None):
    torch_wave = wave if torch_wave is None else torch_wave
    low, highs = dwt2(x, wave, levels, mode)
    ref_low, ref_highs = DWTForward(J=levels, wave=torch_wave, mode=mode)(x)
    _assert_close_to(low, ref_low)
    for high, ref in zip(highs, ref_highs, strict=True):
        _assert_close_to(high, ref)
    recon = idwt2(low, highs, wave, mode)
    _assert_close_to(recon, DWTInverse(wave=torch_wave, mode=mode)((ref_low, ref_highs)))
    return low, highs


@pytest.mark.filterwarnings("ignore:Level value of 2 is too high")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wave", ["haar", *NON_HAAR])
def test_band_tensors_are_contiguous_and_view_like_pytorch_wavelets_outputs(wave, mode):
    x = _random((2, 3, 15, 18))  # odd height: Haar too takes the filter-bank path outside "zero"
    low, highs = dwt2(x, wave, 2, mode)
    ref_low, ref_highs = DWTForward(J=2, wave=wave, mode=mode)(x)
    assert low.is_contiguous() and all(h.is_contiguous() for h in highs)
    for high, ref in zip(highs, ref_highs, strict=True):
        n, c, _, h, w = high.shape
        # what a pytorch_wavelets caller does with a detail tensor: view it as channels
        torch.testing.assert_close(high.view(n, 3 * c, h, w), ref.view(n, 3 * c, h, w))
    assert low.view(-1).shape == ref_low.view(-1).shape
    recon = idwt2(low, highs, wave, mode)
    assert recon.is_contiguous()
    assert recon.view(-1).numel() == recon.numel()


def test_haar_pair_and_band_layouts_return_contiguous_tensors():
    x = _random((2, 3, 16, 20))
    for tensors in (
        haar_dwt2(x),
        haar_dwt2(x.requires_grad_()),
        haar_split(x.detach()),
        (haar_idwt2(*haar_dwt2(x.detach())),),
        (haar_merge(*haar_split(x.detach())),),
    ):
        assert all(t.is_contiguous() for t in tensors)
    _, high = haar_dwt2(x.detach())
    channels = bands_to_channels(high)
    assert channels.is_contiguous() and channels_to_bands(channels).is_contiguous()


def test_a_wavelet_with_a_custom_name_is_used_with_its_own_filters():
    custom = pywt.Wavelet("my-sym3", filter_bank=pywt.Wavelet("sym3").filter_bank)
    x = _random((2, 3, 24, 21))
    low, highs = _assert_matches_pytorch_wavelets(x, custom, 2, "symmetric")
    named_low, named_highs = dwt2(x, "sym3", 2, "symmetric")
    torch.testing.assert_close(low, named_low, rtol=0, atol=0)
    for high, named in zip(highs, named_highs, strict=True):
        torch.testing.assert_close(high, named, rtol=0, atol=0)
    assert max_levels(64, custom) == max_levels(64, "sym3")


@pytest.mark.parametrize("label", ["db2", "haar"])
def test_filters_labelled_with_a_known_name_but_different_are_used_as_given(label):
    # coif1's filters under another wavelet's name: the name must not pick the filters
    impostor = pywt.Wavelet(label, filter_bank=pywt.Wavelet("coif1").filter_bank)
    x = _random((1, 2, 16, 16))
    low, _ = _assert_matches_pytorch_wavelets(x, impostor, 1, "zero")
    assert low.shape != dwt2(x, label, 1, "zero")[0].shape  # 6 taps, not db2's 4 or haar's 2
    reference = pywt.dwt2(x.double().numpy(), pywt.Wavelet("coif1"), mode="zero")
    np.testing.assert_allclose(dwt2(x.double(), impostor)[0].numpy(), reference[0], atol=1e-12)


def test_filter_tuples_follow_pytorch_wavelets_axis_convention():
    db2, db3 = pywt.Wavelet("db2"), pywt.Wavelet("db3")
    x = _random((2, 1, 21, 18))
    analysis = (db2.dec_lo, db2.dec_hi, db3.dec_lo, db3.dec_hi)
    synthesis = (db2.rec_lo, db2.rec_hi, db3.rec_lo, db3.rec_hi)
    low, highs = dwt2(x, analysis, 2, "zero")
    ref_low, ref_highs = DWTForward(J=2, wave=analysis, mode="zero")(x)
    _assert_close_to(low, ref_low)
    for high, ref in zip(highs, ref_highs, strict=True):
        _assert_close_to(high, ref)
    recon = idwt2(low, highs, synthesis, "zero")
    _assert_close_to(recon, DWTInverse(wave=synthesis, mode="zero")((ref_low, ref_highs)))
    # a pair is the same filters along both axes
    _assert_matches_pytorch_wavelets(x, (db2.dec_lo, db2.dec_hi), 1, "periodization")
    pair_low, _ = dwt2(x, (db2.dec_lo, db2.dec_hi), 1, "periodization")
    torch.testing.assert_close(pair_low, dwt2(x, "db2", 1, "periodization")[0])


@pytest.mark.parametrize(
    ("wave", "message"),
    [
        ((pywt.Wavelet("db2").dec_lo,), "2 or 4 filters"),
        (([0.5, 0.5], [0.5, -0.5, 0.1]), "same length"),
        (([0.5, float("nan")], [0.5, -0.5]), "finite"),
        (([[0.5, 0.5]], [0.5, -0.5]), "1-D"),
        (3, "wavelet name"),
    ],
)
def test_bad_filter_banks_are_one_clear_error(wave, message):
    with pytest.raises(ValueError, match=message):
        dwt2(torch.zeros(1, 1, 8, 8), wave)


@pytest.mark.parametrize(
    ("wave", "mode", "size", "levels"),
    [
        ("db2", "zero", (8, 8), 4),
        ("db2", "symmetric", (8, 9), 5),
        ("haar", "zero", (8, 8), 5),
        ("sym3", "periodic", (12, 10), 4),
        ("haar", "periodization", (8, 12), 6),
        ("db2", "reflect", (12, 12), 3),
    ],
)
def test_more_levels_than_pywt_allows_are_computed_with_pywt_warning(wave, mode, size, levels):
    x = _random((1, 2, *size), torch.float64)
    assert levels > max_levels(min(size), wave)
    with pytest.warns(UserWarning, match="too high"):
        low, highs = dwt2(x, wave, levels, mode)
    with pytest.warns(UserWarning, match="too high"):
        reference = pywt.wavedec2(x.numpy(), wave, mode=mode, level=levels, axes=(-2, -1))
    assert len(highs) == levels
    np.testing.assert_allclose(low.numpy(), reference[0], rtol=0, atol=1e-10)
    for level, high in enumerate(highs, start=1):
        np.testing.assert_allclose(high.numpy(), np.stack(reference[-level], axis=2), atol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pytorch_wavelets computes them silently
        ref_low, ref_highs = DWTForward(J=levels, wave=wave, mode=mode)(x.float())
    with pytest.warns(UserWarning, match="too high"):
        low32, highs32 = dwt2(x.float(), wave, levels, mode)
    _assert_close_to(low32, ref_low)
    for high, ref in zip(highs32, ref_highs, strict=True):
        _assert_close_to(high, ref)


def test_levels_within_pywt_maximum_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dwt2(_random((1, 1, 16, 16)), "db2", max_levels(16, "db2"))


def test_a_level_too_short_for_reflect_padding_is_a_clear_error():
    # pywt refuses reflect mode on a 1-sample signal too; pytorch_wavelets fails inside F.pad
    with pytest.warns(UserWarning, match="too high"), pytest.raises(ValueError, match="reflect"):
        dwt2(_random((1, 1, 5, 5)), "haar", 4, "reflect")


def test_an_image_with_an_empty_side_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        dwt2(torch.zeros(1, 3, 0, 8))

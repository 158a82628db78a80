"""VAR's multi-scale residual quantiser: codes, straight-through, residual, numerics."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from freqlat.tokenizers import MultiScaleResidualQuantizer
from freqlat.tokenizers.quantizer import phi_schedule

PATCHES = (1, 2, 3, 4, 6, 8)


def _quantizer(phi_ratio=0.5, vocab=512, channels=8):
    torch.manual_seed(0)
    quantizer = MultiScaleResidualQuantizer(channels, vocab, PATCHES, phi_ratio=phi_ratio)
    with torch.no_grad():
        quantizer.embedding.weight.normal_(0.0, 0.3)
    return quantizer


def _latent(batch=2, channels=8, side=8):
    generator = torch.Generator().manual_seed(1)
    coarse = torch.randn(batch, channels, 2, 2, generator=generator)
    smooth = F.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)
    return smooth + 0.2 * torch.randn(batch, channels, side, side, generator=generator)


def test_phi_schedule_matches_var_for_ten_scales_and_four_phis():
    assert phi_schedule(10, 4) == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    assert phi_schedule(4, 1) == [0, 0, 0, 0]


def test_codes_are_in_range_with_one_map_per_scale():
    out = _quantizer()(_latent())
    assert [tuple(i.shape) for i in out.indices] == [(2, p, p) for p in PATCHES]
    for idx in out.indices:
        assert idx.dtype == torch.long and int(idx.min()) >= 0 and int(idx.max()) < 512


def test_nearest_code_is_the_l2_argmin():
    quantizer = _quantizer()
    vectors = torch.randn(50, 8)
    brute = torch.cdist(vectors, quantizer.embedding.weight.detach()).argmin(dim=1)
    assert torch.equal(quantizer.nearest_codes(vectors), brute)


def test_straight_through_gradient_is_the_identity():
    quantizer = _quantizer()
    f = _latent().requires_grad_(True)
    out = quantizer(f)
    weights = torch.randn_like(f)
    (out.quantized * weights).sum().backward()
    torch.testing.assert_close(f.grad, weights)


def test_value_is_the_multiscale_sum_of_the_chosen_codes():
    quantizer = _quantizer()
    out = quantizer(_latent())
    torch.testing.assert_close(out.quantized, quantizer.indices_to_latent(out.indices))


def test_residual_norm_decreases_over_scales():
    quantizer = _quantizer(phi_ratio=0.0, vocab=1024)
    f = _latent()
    out = quantizer(f)
    norms = [f.norm().item()] + [
        (f - s).norm().item() for s in quantizer.cumulative_latents(out.indices)
    ]
    assert all(later < earlier for earlier, later in itertools.pairwise(norms)), norms


def test_vq_loss_is_scale_mean_of_codebook_plus_beta_commitment():
    quantizer = _quantizer()
    f = _latent()
    out = quantizer(f)
    partial = quantizer.cumulative_latents(out.indices)
    expected = sum((1 + 0.25) * F.mse_loss(s, f) for s in partial) / len(PATCHES)
    torch.testing.assert_close(out.loss, expected)


def test_codebook_and_phi_get_gradients_from_the_vq_loss():
    quantizer = _quantizer()
    quantizer(_latent()).loss.backward()
    assert quantizer.embedding.weight.grad.abs().sum() > 0
    assert all(phi.weight.grad is not None for phi in quantizer.phi)


def test_bf16_autocast_input_is_quantised_in_float32():
    quantizer = _quantizer()
    f = _latent().bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = quantizer(f)
    exact = quantizer(f.float())
    assert mixed.quantized.dtype == torch.float32 and mixed.loss.dtype == torch.float32
    assert all(torch.equal(a, b) for a, b in zip(mixed.indices, exact.indices, strict=True))


def test_channels_last_input_gives_the_same_codes():
    quantizer = _quantizer()
    f = _latent()
    plain = quantizer(f)
    strided = quantizer(f.to(memory_format=torch.channels_last))
    assert all(torch.equal(a, b) for a, b in zip(plain.indices, strided.indices, strict=True))
    torch.testing.assert_close(plain.quantized, strided.quantized)


def test_wrong_latent_size_and_bad_indices_are_rejected():
    quantizer = _quantizer()
    with pytest.raises(ValueError, match="last patch size"):
        quantizer(torch.zeros(1, 8, 6, 6))
    with pytest.raises(ValueError, match="must lie in"):
        quantizer.cumulative_latents([torch.full((1, 1, 1), 512)])

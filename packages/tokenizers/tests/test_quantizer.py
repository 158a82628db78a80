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


def _direct_running_sums(quantizer, indices):
    """f_hat after each scale, written out: sum of phi_k(bicubic(code map of scale k))."""
    side, total, sums = PATCHES[-1], 0, []
    for scale, idx in enumerate(indices):
        codes = quantizer.embedding.weight[idx.view(idx.shape[0], -1)]  # N x pn^2 x C
        pn = PATCHES[scale]
        grid = codes.transpose(1, 2).reshape(idx.shape[0], -1, pn, pn)
        if pn != side:
            grid = F.interpolate(grid, size=(side, side), mode="bicubic")
        total = total + quantizer.phi[quantizer.phi_index[scale]](grid)
        sums.append(total)
    return sums


def test_teacher_forcing_inputs_are_the_downsampled_running_sums():
    quantizer = _quantizer()
    indices = quantizer(_latent()).indices
    with torch.no_grad():
        inputs = quantizer.teacher_forcing_inputs(indices)
        sums = _direct_running_sums(quantizer, indices)
    expected = torch.cat(
        [
            F.adaptive_avg_pool2d(f_hat, pn).flatten(2).transpose(1, 2)
            for f_hat, pn in zip(sums[:-1], PATCHES[1:], strict=True)
        ],
        dim=1,
    )
    assert inputs.shape == (2, sum(p * p for p in PATCHES[1:]), 8)
    torch.testing.assert_close(inputs, expected, rtol=0, atol=1e-6)
    flat = [i.flatten(1) for i in indices]  # N x pn^2 maps give the same inputs
    torch.testing.assert_close(quantizer.teacher_forcing_inputs(flat), inputs, rtol=0, atol=0)


def test_autoregressive_steps_rebuild_the_teacher_forcing_inputs_and_the_latent():
    quantizer = _quantizer()
    indices = quantizer(_latent()).indices
    f_hat, steps = None, []
    with torch.no_grad():
        for scale, idx in enumerate(indices):
            codes = quantizer.embedding(idx).permute(0, 3, 1, 2)
            f_hat, following = quantizer.next_autoregressive_input(scale, f_hat, codes)
            if following is not None:
                steps.append(following.flatten(2).transpose(1, 2))
        torch.testing.assert_close(
            torch.cat(steps, dim=1), quantizer.teacher_forcing_inputs(indices), rtol=0, atol=0
        )
        torch.testing.assert_close(f_hat, quantizer.indices_to_latent(indices), rtol=0, atol=0)
    assert following is None
    with pytest.raises(ValueError, match=r"scale 1 needs code vectors N x 8 x 2 x 2"):
        quantizer.next_autoregressive_input(1, f_hat, torch.zeros(2, 8, 3, 3))

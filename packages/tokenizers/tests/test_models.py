"""Every tiny tokenizer: round trip, gradients, the loss-facing output, bf16 and channels-last."""

import pytest
import torch

from freqlat.tokenizers import DiagonalGaussian, TokenizerOutput, list_tokenizers

TINY_PRESETS = [name for name in list_tokenizers() if name.endswith("-tiny")]


def tiny_image_size(name):
    """Smallest image side a tiny preset takes (the VQ model fixes its size)."""
    return 64 if name.startswith("ms-vq-vae") else 32


def _images(smooth_images, name):
    size = tiny_image_size(name)
    return smooth_images[:, :, :size, :size].contiguous()


@pytest.mark.parametrize("name", TINY_PRESETS)
def test_encode_decode_round_trip_shapes(tiny_models, smooth_images, name):
    model = tiny_models[name]
    x = _images(smooth_images, name)
    with torch.no_grad():
        encoded = model.encode(x)
        latent = encoded.mode() if isinstance(encoded, DiagonalGaussian) else encoded.quantized
        recon = model.decode(latent)
    assert tuple(latent.shape[1:]) == model.latent_shape(x.shape[-1])
    assert recon.shape == x.shape


@pytest.mark.parametrize("name", TINY_PRESETS)
def test_forward_without_sampling_equals_decode_of_encode(tiny_models, smooth_images, name):
    model = tiny_models[name]
    x = _images(smooth_images, name)
    with torch.no_grad():
        out = model(x, sample=False)
        encoded = model.encode(x)
        latent = encoded.mode() if isinstance(encoded, DiagonalGaussian) else encoded.quantized
        torch.testing.assert_close(out.recon, model.decode(latent))
    assert isinstance(out, TokenizerOutput)
    torch.testing.assert_close(out.latent, latent)


@pytest.mark.parametrize("name", TINY_PRESETS)
def test_output_carries_what_the_loss_needs(tiny_models, smooth_images, name):
    model = tiny_models[name]
    x = _images(smooth_images, name)
    with torch.no_grad():
        out = model(x)
    if name.startswith("ms-vq-vae"):
        assert out.posterior is None and out.vq_loss.dim() == 0
        assert [tuple(i.shape) for i in out.indices] == [(2, p, p) for p in (1, 2, 3, 4)]
    elif name.startswith("fa-vae"):
        assert out.posterior is None and set(out.branches) == {"low", "high"}
        low, high = out.branches["low"], out.branches["high"]
        assert low.input.shape == low.recon.shape == (2, 3, 32, 32)
        assert high.input.shape == high.recon.shape == (2, 9, 16, 16)
        assert out.latent.shape[1] == high.latent.shape[1] + low.latent.shape[1]
        torch.testing.assert_close(out.latent[:, : high.latent.shape[1]], high.latent)
    else:
        assert out.posterior.mean.shape == out.latent.shape and out.branches is None
    # the wavelet models' decoders end in their 48 coefficient channels (upstream's last layer)
    out_channels = 48 if "-wav-" in name else 3
    assert model.encoder_last_weight.dim() == 4
    assert model.decoder_last_weight.shape[0] == out_channels


@pytest.mark.parametrize("name", TINY_PRESETS)
def test_gradients_reach_every_trainable_parameter(tiny_models, smooth_images, name):
    model = tiny_models[name].train()
    x = _images(smooth_images, name)[:1]
    model.zero_grad(set_to_none=True)
    out = model(x)
    loss = (out.recon - x).abs().mean()
    if out.vq_loss is not None:
        loss = loss + out.vq_loss
    if out.posterior is not None:
        loss = loss + 1e-6 * out.posterior.kl().mean()
    for branch in (out.branches or {}).values():
        loss = (
            loss + (branch.recon - branch.input).abs().mean() + 1e-6 * branch.posterior.kl().mean()
        )
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    model.eval().zero_grad(set_to_none=True)
    assert missing == []


@pytest.mark.parametrize("name", TINY_PRESETS)
def test_bf16_autocast_and_channels_last(tiny_models, smooth_images, name):
    model = tiny_models[name]
    x = _images(smooth_images, name)
    with torch.no_grad():
        full = model(x, sample=False)
        reference = full.recon
        model.to(memory_format=torch.channels_last)
        try:
            channels_last = model(x.to(memory_format=torch.channels_last), sample=False).recon
            with torch.autocast("cpu", dtype=torch.bfloat16):
                mixed = model(x.to(memory_format=torch.channels_last), sample=False)
                # bf16 features may flip a near-tied token, and one token moves a random
                # decoder's image far (ms-vq-vae-wav-tiny: 17%): decode the float32 tokens
                mixed_recon = mixed.recon if full.indices is None else model.decode(full.latent)
        finally:
            model.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(channels_last, reference, rtol=1e-4, atol=1e-4)
    assert torch.isfinite(mixed.recon).all()
    assert (mixed_recon.float() - reference).abs().mean() < 0.1 * reference.abs().mean() + 1e-2
    if mixed.vq_loss is not None:
        assert mixed.vq_loss.dtype == torch.float32

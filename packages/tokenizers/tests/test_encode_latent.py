"""The tokenizer -> generator contract: ``encode_latent`` (and ``encode_indices`` for VQ) on every
tiny preset, against the posterior / quantiser outputs and the per-image draws freqlat-eval uses."""

import numpy as np
import pytest
import torch

from freqlat.tokenizers import DiagonalGaussian, MultiScaleVQVAE, list_tokenizers

TINY = [name for name in list_tokenizers() if name.endswith("-tiny")]


def _images(model, count: int = 3) -> torch.Tensor:
    size = getattr(model, "image_size", 32)  # the VQ model takes one size only
    generator = torch.Generator().manual_seed(1)
    return torch.rand(count, 3, size, size, generator=generator) * 2 - 1


def _per_image_generators(indices, seed):
    """freqlat-eval's rule before the contract: image i's draw seeded by SeedSequence([seed, i])."""
    generators = []
    for index in indices:
        state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
        generators.append(torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1])))
    return generators


@pytest.mark.parametrize("preset", TINY)
def test_encode_latent_is_the_mode_a_seeded_sample_or_the_quantised_latent(tiny_models, preset):
    model = tiny_models[preset]
    x = _images(model)
    with torch.no_grad():
        encoded = model.encode(x)
        mode = model.encode_latent(x, sample=False)
        first = model.encode_latent(x, sample=True, generator=torch.Generator().manual_seed(5))
        again = model.encode_latent(x, sample=True, generator=torch.Generator().manual_seed(5))
        recon = model(x, sample=False).recon
    assert mode.shape == (3, *model.latent_shape(x.shape[-1]))
    assert torch.equal(first, again)
    if isinstance(model, MultiScaleVQVAE):
        assert torch.equal(mode, encoded.quantized) and torch.equal(first, mode)
        return
    assert isinstance(encoded, DiagonalGaussian)  # FA-VAE's: the joint [high, low] posterior
    assert torch.equal(mode, encoded.mode())
    noise = torch.randn(encoded.mean.shape, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(first, encoded.mean + encoded.std * noise, rtol=0, atol=0)
    assert not torch.equal(first, mode)
    with torch.no_grad():
        torch.testing.assert_close(model.decode(mode), recon, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preset", [name for name in TINY if not name.startswith("ms-vq")])
def test_per_image_generators_give_freqlat_evals_draws_whatever_the_batching(tiny_models, preset):
    model = tiny_models[preset]
    x = _images(model)
    with torch.no_grad():
        posterior = model.encode(x)
        whole = model.encode_latent(x, sample=True, generator=_per_image_generators([0, 1, 2], 7))
        last = model.encode_latent(x[2:], sample=True, generator=_per_image_generators([2], 7))
    noise = torch.stack(
        [
            torch.randn(posterior.mean.shape[1:], generator=g)
            for g in _per_image_generators(range(3), 7)
        ]
    )
    assert torch.equal(whole, posterior.mean + posterior.std * noise)  # as freqlat-eval computed
    torch.testing.assert_close(last, whole[2:], rtol=1e-5, atol=1e-5)  # other batch: rounding
    with pytest.raises(ValueError, match="2 generators for a batch of 3"):
        model.encode_latent(x, sample=True, generator=_per_image_generators([0, 1], 7))


def test_vq_indices_are_the_quantisers_and_decode_to_the_latents_image(tiny_models):
    model = tiny_models["ms-vq-vae-tiny"]
    x = _images(model, 2)
    with torch.no_grad():
        encoded = model.encode(x)
        indices = model.encode_indices(x)
        from_indices = model.decode_indices(indices)
        from_latent = model.decode(model.encode_latent(x, sample=False))
    patch_sizes = model.config.patch_sizes
    assert [tuple(i.shape) for i in indices] == [(2, p, p) for p in patch_sizes]
    assert all(torch.equal(a, b) for a, b in zip(indices, encoded.indices, strict=True))
    # the latent is the straight-through sum x + (f_hat - x), equal to f_hat up to rounding
    torch.testing.assert_close(from_indices, from_latent, rtol=1e-4, atol=1e-4)

"""VAR on the wavelet MS-VQ-VAE's tokens (the FA-VAE author's VAR experiment): var-tiny with the
wavelet tokenizer's latent width predicts, trains on and generates its token maps."""

import pytest
import torch

from freqlat.generators import NextScaleObjective, create_generator
from freqlat.tokenizers import create_tokenizer


@pytest.fixture(scope="module")
def wavelet_tokenizer():
    torch.manual_seed(0)
    return create_tokenizer("ms-vq-vae-wav-tiny").eval()


def test_var_tiny_needs_the_wavelet_tokenizers_latent_width(wavelet_tokenizer):
    # ms-vq-vae-wav-tiny keeps the author's 256-channel latent; var-tiny is built for 32
    with pytest.raises(ValueError, match="256 x 256 with scales"):
        create_generator("var-tiny", tokenizer=wavelet_tokenizer)
    model = create_generator("var-tiny", tokenizer=wavelet_tokenizer, latent_channels=256)
    assert model.quantizer is wavelet_tokenizer.quantize


def test_var_trains_on_and_generates_the_wavelet_tokens(wavelet_tokenizer):
    torch.manual_seed(0)
    model = create_generator("var-tiny", tokenizer=wavelet_tokenizer, latent_channels=256)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    labels = torch.tensor([3, 7])
    with torch.no_grad():
        indices = wavelet_tokenizer.encode_indices(images)
        inputs = model.teacher_forcing_inputs(indices)
    assert inputs.shape == (2, 4 + 9 + 16, 256)
    terms = NextScaleObjective()(model.train(), labels, indices)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"]) and model.head.weight.grad is not None
    tokens = model.generate(labels, generator=torch.Generator().manual_seed(0))
    assert [tuple(t.shape) for t in tokens] == [(2, 1), (2, 4), (2, 9), (2, 16)]
    with torch.no_grad():
        assert wavelet_tokenizer.decode_indices(tokens).shape == (2, 3, 64, 64)

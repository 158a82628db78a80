"""create_tokenizer_loss picks the loss, objective and VF width that fit each tokenizer."""

import pytest
from torch import nn

from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.losses import (
    AutoencoderLoss,
    FrequencyAwareLoss,
    create_tokenizer_loss,
)


class ZeroPerceptual(nn.Module):
    def forward(self, x, y):
        return (x - y).sum(dim=(1, 2, 3)) * 0


def test_each_tokenizer_gets_its_matching_loss(tiny_foundation):
    foundation = tiny_foundation()
    kl = create_tokenizer_loss(create_tokenizer("kl-vae-f16d16-tiny"), perceptual=ZeroPerceptual())
    assert isinstance(kl, AutoencoderLoss) and kl.config.objective == "kl" and kl.vf is None
    vq = create_tokenizer_loss(create_tokenizer("ms-vq-vae-tiny"), perceptual=ZeroPerceptual())
    assert vq.config.objective == "vq" and vq.logvar is None
    va = create_tokenizer_loss(
        create_tokenizer("va-vae-f16d32-tiny"), perceptual=ZeroPerceptual(), foundation=foundation
    )
    assert va.vf is not None and va.vf.projection.weight.shape == (32, 32, 1, 1)
    fa = create_tokenizer_loss(
        create_tokenizer("fa-vae-f16d32-tiny"), perceptual=ZeroPerceptual(), foundation=foundation
    )
    assert isinstance(fa, FrequencyAwareLoss)
    assert fa.low.vf.projection.in_channels == 24  # the equal-budget preset's low branch
    assert fa.high.discriminator.in_channels == 9 and fa.high.perceptual is None


def test_vf_presets_without_a_foundation_model_raise_value_error():
    with pytest.raises(ValueError, match="foundation"):
        create_tokenizer_loss(create_tokenizer("va-vae-f16d32-tiny"), perceptual=ZeroPerceptual())
    loss = create_tokenizer_loss(
        create_tokenizer("va-vae-f16d32-tiny"), perceptual=ZeroPerceptual(), use_vf=False
    )
    assert loss.vf is None


def test_trainable_state_leaves_out_frozen_networks_and_round_trips(tiny_foundation):
    model = create_tokenizer("fa-vae-f16d32-tiny")
    kwargs = {"perceptual": ZeroPerceptual(), "foundation": tiny_foundation()}
    loss = create_tokenizer_loss(model, **kwargs)
    state = loss.trainable_state_dict()
    assert not any(".foundation." in k for k in state)
    assert "low.logvar" in state and "low.vf.projection.weight" in state
    assert any(k.startswith("high.discriminator.") for k in state)
    other = create_tokenizer_loss(model, **kwargs)
    other.load_trainable_state_dict(state)
    assert all((other.trainable_state_dict()[k] == v).all() for k, v in state.items())
    with pytest.raises(ValueError, match="missing"):
        other.load_trainable_state_dict({k: v for k, v in state.items() if k != "low.logvar"})

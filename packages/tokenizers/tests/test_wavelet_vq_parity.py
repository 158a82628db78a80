"""ms-vq-vae-wav against the FA-VAE author's code (HY-Wong/VAR) on identical weights, replayed
from a committed fixture.

``data/ms_vq_vae_wav_parity.safetensors`` was written by ``benchmarks/msvq_wav_parity.py
--write-fixture`` from a checkout of the author's code (commit in its metadata): the weights of
a small ``ms-vq-vae-wav-tiny`` (one level, two blocks, 16 px) and of a two-layer PatchGAN, two
images, and the author's ``trainer_wav.py`` forward (bands, embedding, decoded parts, image),
tokens, and ``models/loss.py`` losses for l1, l2 and focal reconstruction with the GAN off
(iteration 9) and on (10), with the gradients of a few tensors. LPIPS is replaced on both sides
by the per-image mean squared difference (no VGG weights here).
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.losses import WaveletVQLossConfig, create_tokenizer_loss

FIXTURE = Path(__file__).parent / "data" / "ms_vq_vae_wav_parity.safetensors"
GRADIENTS = (
    "front_end.down.weight",
    "front_end.up.weight",
    "encoder.conv_out.bias",
    "decoder.conv_out.bias",
    "quantize.embedding.weight",
)


def _fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    return json.loads(meta["fields"]), tensors


FIELDS, TENSORS = _fixture()
FORK = {k[len("fork.") :]: v for k, v in TENSORS.items() if k.startswith("fork.")}


def _part(prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v.float() for k, v in TENSORS.items() if k.startswith(prefix)}


def _relative(ours, theirs):
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


@pytest.fixture(scope="module")
def model():
    model = create_tokenizer("ms-vq-vae-wav-tiny", **FIELDS["model"])
    model.load_state_dict(_part("model."))
    return model.train()  # as the author's trainer runs it (no dropout, no batch statistics)


def _loss(model, perceptual, reconstruction):
    config = WaveletVQLossConfig(reconstruction=reconstruction, **FIELDS["loss"])
    loss = create_tokenizer_loss(model, perceptual=perceptual, config=config)
    loss.discriminator.load_state_dict(_part("discriminator."))
    return loss.train()


def test_forward_matches_the_authors_trainer(model):
    with torch.no_grad():
        out = model(TENSORS["images"])
    parts = out.components
    ours = {
        "level1": parts.target.level1,
        "level2": parts.target.level2,
        "low": parts.target.low,
        "embedding": parts.embedding,
        "recon_level1": parts.recon.level1,
        "recon_level2": parts.recon.level2,
        "recon_low": parts.recon.low,
        "recon_embedding": parts.recon_embedding,
        "recon": out.recon,
        "vq_loss": out.vq_loss,
    }
    for name, value in ours.items():
        assert _relative(value, FORK[name]) < 1e-5, name
    tokens = [FORK[f"tokens.{k}"] for k in range(len(out.indices))]
    assert all(torch.equal(a.flatten(1), b) for a, b in zip(out.indices, tokens, strict=True))


def test_quantiser_and_decoder_on_the_authors_tensors(model):
    with torch.no_grad():
        quantized = model.quantize(FORK["features"])
        image = model.decode(FORK["f_hat"])
        tokens = [FORK[f"tokens.{k}"] for k in range(len(quantized.indices))]
        from_tokens = model.decode_indices(tokens)
    assert all(torch.equal(a.flatten(1), b) for a, b in zip(quantized.indices, tokens, strict=True))
    assert _relative(quantized.quantized, FORK["f_hat"]) < 1e-6
    assert _relative(image, FORK["recon"]) < 1e-5
    assert _relative(from_tokens, FORK["recon"]) < 1e-5


@pytest.mark.parametrize("reconstruction", ["l1", "l2", "focal"])
def test_loss_and_gradients_match_the_authors(model, perceptual_stand_in, reconstruction):
    loss = _loss(model, perceptual_stand_in, reconstruction)
    images = TENSORS["images"]
    for fork_step in (9, 10):  # the author's GAN starts at iteration 10, ours at step 9
        model.zero_grad()
        terms = loss.autoencoder_step(model, images, model(images), fork_step - 1)
        key = f"loss.{reconstruction}.{fork_step}"
        assert _relative(terms["loss"].detach(), FORK[key]) < 1e-5
        assert ("d_weight" in terms) == (fork_step == 10)
        if fork_step == 10:
            assert _relative(terms["d_weight"], FORK[f"{key}.d_weight"]) < 1e-4
    if reconstruction == "l1":
        terms["loss"].backward()
        named = dict(model.named_parameters())
        for name in GRADIENTS:
            assert _relative(named[name].grad, FORK[f"grad.{name}"]) < 1e-4, name
        model.zero_grad()


def test_discriminator_loss_matches_the_authors(model, perceptual_stand_in):
    loss = _loss(model, perceptual_stand_in, "l1")
    with torch.no_grad():
        out = model(TENSORS["images"])
        terms = loss.discriminator_step(TENSORS["images"], out, step=9)
    assert _relative(terms["loss"], FORK["disc_loss"]) < 1e-5

"""Every tokenizer family trains through the CLI with its GAN alternation switched on."""

import json

import pytest

from freqlat.core import latest_checkpoint
from freqlat.train import main


@pytest.mark.parametrize(
    ("preset", "size"),
    [("fa-vae-f16d32-tiny", 32), ("ms-vq-vae-tiny", 64)],
)
def test_tiny_preset_trains_with_both_optimisers(tmp_path, tiny_args, one_thread, preset, size):
    run_dir = tmp_path / "run"
    args = tiny_args(run_dir, steps=2, batch_size=2, disc_start=0, checkpoint_every=2)
    args[1:3] = ["--preset", preset]
    assert main(args) == 0
    meta = json.loads((latest_checkpoint(run_dir / "checkpoints") / "meta.json").read_text())
    terms = meta["metadata"]["terms"]
    assert meta["step"] == 2 and meta["metadata"]["config"]["image_size"] == size
    assert any(k.endswith("g_loss") for k in terms)  # the autoencoder's adversarial term
    assert any(k.startswith("disc/") and k.endswith("disc_loss") for k in terms)
    if preset.startswith("fa-vae"):
        assert {"low/nll_loss", "high/nll_loss"} <= set(terms)
    else:
        assert "vq_loss" in terms


def test_lpips_loss_accepts_reconstructions_outside_the_image_range(
    tmp_path, tiny_args, one_thread, monkeypatch
):
    from dataclasses import replace

    import torch

    from freqlat.metrics import LPIPS, perceptual
    from freqlat.metrics.weights import file_sha256

    # a weights file of random values (none can be downloaded here), in torchvision's layout,
    # accepted as the published file by pinning its own sha256
    trunk = LPIPS("vgg", pretrained=False).features.state_dict()
    weights = tmp_path / "vgg16-random.pth"
    torch.save({f"features.{k}": v for k, v in trunk.items()}, weights)
    monkeypatch.setenv("FREQLAT_CACHE", str(tmp_path / "cache"))
    pinned = replace(perceptual.TRUNK_WEIGHTS["vgg"], sha256=file_sha256(weights))
    monkeypatch.setitem(perceptual.TRUNK_WEIGHTS, "vgg", pinned)
    run_dir = tmp_path / "run"
    args = tiny_args(run_dir, steps=2, batch_size=2, checkpoint_every=2)
    args += ["--perceptual-weight", "1.0", "--lpips-trunk", str(weights)]
    # an untrained decoder's output overshoots [-1, 1]; the loss must take it as it is
    assert main(args) == 0
    meta = json.loads((latest_checkpoint(run_dir / "checkpoints") / "meta.json").read_text())
    assert meta["metadata"]["terms"]["perceptual_loss"] > 0

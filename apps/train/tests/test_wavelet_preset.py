"""The wavelet KL-VAE of the FA-VAE author's LDM experiment trains through the CLI like every KL model."""

import json

import torch
from skimage import data

from freqlat.core import latest_checkpoint
from freqlat.tokenizers import WaveletAutoencoderKL, from_pretrained
from freqlat.train import main


def test_wavelet_kl_vae_trains_with_both_optimisers_and_round_trips_a_photo(
    tmp_path, tiny_args, one_thread
):
    run_dir = tmp_path / "run"
    args = tiny_args(run_dir, steps=2, batch_size=2, disc_start=0, checkpoint_every=2)
    args[1:3] = ["--preset", "kl-vae-wav-f16d16-tiny"]
    assert main(args) == 0
    meta = json.loads((latest_checkpoint(run_dir / "checkpoints") / "meta.json").read_text())
    terms = meta["metadata"]["terms"]
    assert meta["step"] == 2 and {"nll_loss", "kl_loss", "g_loss"} <= set(terms)
    assert any(k.startswith("disc/") for k in terms)
    model = from_pretrained(run_dir / "export" / "model").eval()
    assert isinstance(model, WaveletAutoencoderKL)
    photo = torch.from_numpy(data.chelsea()[::8, ::8][:32, :32]).permute(2, 0, 1)
    photo = (photo.float() / 127.5 - 1).unsqueeze(0)
    with torch.no_grad():
        recon = model.decode(model.encode(photo).mode())
    assert recon.shape == photo.shape and torch.isfinite(recon).all()

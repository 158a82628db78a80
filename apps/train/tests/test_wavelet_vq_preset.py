"""The wavelet MS-VQ-VAE of the FA-VAE author's VAR experiment trains through the CLI with its own
loss and round-trips a photograph through its tokens."""

import json

import torch
from skimage import data

from freqlat.core import latest_checkpoint
from freqlat.tokenizers import WaveletMultiScaleVQVAE, from_pretrained
from freqlat.train import main


def test_wavelet_ms_vq_vae_trains_with_both_optimisers_and_round_trips_a_photo(
    tmp_path, tiny_args, one_thread
):
    run_dir = tmp_path / "run"
    args = tiny_args(run_dir, steps=2, batch_size=2, disc_start=1, checkpoint_every=2)
    args[1:3] = ["--preset", "ms-vq-vae-wav-tiny"]
    assert main(args) == 0
    meta = json.loads((latest_checkpoint(run_dir / "checkpoints") / "meta.json").read_text())
    terms = meta["metadata"]["terms"]
    assert meta["step"] == 2 and meta["metadata"]["config"]["image_size"] == 64
    parts = {"rec_level1", "rec_level2", "rec_low", "rec_embedding", "vq_loss", "g_loss"}
    assert parts <= set(terms) and "disc/disc_loss" in terms
    model = from_pretrained(run_dir / "export" / "model").eval()
    assert isinstance(model, WaveletMultiScaleVQVAE)
    photo = torch.from_numpy(data.chelsea()[::4, ::4][:64, 10:74]).permute(2, 0, 1)
    photo = (photo.float() / 127.5 - 1).unsqueeze(0)
    with torch.no_grad():
        tokens = model.encode_indices(photo)
        recon = model.decode_indices(tokens)
    assert [tuple(t.shape) for t in tokens] == [(1, p, p) for p in (1, 2, 3, 4)]
    assert recon.shape == photo.shape and torch.isfinite(recon).all()

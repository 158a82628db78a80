"""The README's reproduction command on random stand-ins of the released files, and the
Inception columns filled (with random Inception weights standing in for the published ones)."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

import freqlat.eval.reference_batch as reference_module
from freqlat.eval import main
from freqlat.generators import create_generator, sample_flow
from freqlat.metrics import InceptionFeatures, InceptionMetrics, inception, read_adm_npz
from freqlat.metrics.weights import file_sha256
from freqlat.tokenizers import create_tokenizer

NUM_SAMPLES = 4


def _seeded_noise(index: int, seed: int = 0) -> torch.Tensor:
    """Upstream-independent restatement of the noise rule: SeedSequence([seed, i]) -> 64 bits."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randn((32, 16, 16), generator=generator)


def _uniform_label(index: int, seed: int = 0) -> int:
    return int(np.random.default_rng(np.random.SeedSequence([seed, index, 1])).integers(1000))


def test_the_readme_command_runs_on_stand_ins_of_the_released_files(tmp_path, reference_batch):
    # a tiny LightningDiT in upstream train.py's container, under the release's file name
    torch.manual_seed(0)
    ema, raw = create_generator("lightningdit-tiny"), create_generator("lightningdit-tiny")
    with torch.no_grad():
        for parameter in ema.parameters():  # adaLN-Zero: give the zero layers some signal
            if parameter.requires_grad:  # not the fixed position table
                parameter.add_(0.05 * torch.randn_like(parameter))
    checkpoint = tmp_path / "lightningdit-xl-imagenet256-64ep.pt"
    config = {"model": {"model_type": "LightningDiT-XL/1"}}
    torch.save({"model": raw.state_dict(), "ema": ema.state_dict(), "config": config}, checkpoint)
    mean, std = torch.randn(1, 32, 1, 1), torch.rand(1, 32, 1, 1) + 0.5
    torch.save({"mean": mean, "std": std}, tmp_path / "latents_stats.pt")
    ref = reference_batch(tmp_path / "VIRTUAL_imagenet256_labeled.npz", 256, count=2)
    out = tmp_path / "out"
    args = ["generate", "--generator", f"lightningdit-tiny={checkpoint}"]
    args += ["--tokenizer", "random:va-vae-f16d32-tiny"]
    args += ["--latent-stats", str(tmp_path / "latents_stats.pt"), "--reference", str(ref)]
    args += ["--num-samples", str(NUM_SAMPLES), "--cfg-scale", "1", "10"]
    args += ["--cfg-interval-start", "0.1", "--timestep-shift", "0.3", "--steps", "4"]
    args += ["--batch-size", "4", "--png", "true", "--out", str(out)]
    args += ["--gpus-per-node", "0"]  # compared with a CPU computation below
    assert main(args) == 0

    document = json.loads((out / "generation.json").read_text())
    plain, guided = document["rows"]
    assert (plain["guided"], guided["guided"]) == (False, True)
    assert plain["generator"] == "lightningdit-tiny (official)" and plain["epochs"] == 64
    assert plain["tokenizer"] == "va-vae-f16d32-tiny (random weights)"
    assert plain["quantization"] == "lightningdit" and plain["labels"] == "uniform"
    assert guided["sampler"] == {
        "sampler": "flow-euler",
        "steps": 4,
        "timestep_shift": 0.3,
        "cfg_scale": 10.0,
        "cfg_interval_start": 0.1,
        "guidance_channels": 3,
    }
    assert str(tmp_path / "latents_stats.pt") in plain["latent_space"]["source"]
    assert plain["HF ratio"] > 0 and plain["image_size"] == [256, 256]
    markdown = (out / "generation.md").read_text()
    assert "| va-vae-f16d32-tiny (random weights) | 64 | missing |" in markdown

    # the samples equal upstream's recipe written out: the EMA weights, Euler with CFG on the
    # first 3 channels, (x * std) + mean, decode, clamp(127.5 x + 128, 0, 255) to uint8
    torch.manual_seed(0)  # random:PRESET builds its weights under --seed 0
    tokenizer = create_tokenizer("va-vae-f16d32-tiny").eval()
    noise = torch.stack([_seeded_noise(i) for i in range(NUM_SAMPLES)])
    labels = torch.tensor([_uniform_label(i) for i in range(NUM_SAMPLES)])
    ema.eval()
    for row, scale in ((plain, 1.0), (guided, 10.0)):
        latents = sample_flow(
            ema, noise, labels, steps=4, cfg_scale=scale, cfg_interval_start=0.1, timestep_shift=0.3
        )
        with torch.no_grad():
            images = tokenizer.decode(latents * std + mean)
        expected = torch.clamp(127.5 * images + 128.0, 0, 255).to(torch.uint8)
        samples, _ = read_adm_npz(row["samples"])
        assert torch.equal(samples, expected), scale
        with np.load(row["samples"]) as data:
            np.testing.assert_array_equal(data["arr_1"], labels.numpy())
        png = np.asarray(Image.open(f"{row['png']}/000003.png"))
        np.testing.assert_array_equal(png, expected[3].permute(1, 2, 0).numpy())


def test_the_inception_columns_match_a_direct_computation_and_the_reference_is_cached(
    tmp_path, generator_run, reference_batch, monkeypatch
):
    weights = tmp_path / "inception-random.pth"
    torch.save(InceptionFeatures(pretrained=False).state_dict(), weights)
    # random weights stand in for the published file: accept them by their own sha256
    accepted = replace(inception.INCEPTION_WEIGHTS, sha256=file_sha256(weights))
    monkeypatch.setattr(inception, "INCEPTION_WEIGHTS", accepted)
    tiny = generator_run("flow")
    ref = reference_batch(tmp_path / "ref.npz", tiny.image_size, count=5)
    out = tmp_path / "out"
    args = ["generate", "--generator", str(tiny.run), "--cfg-scale", "4", "--num-samples", "6"]
    args += ["--steps", "3", "--batch-size", "4", "--reference", str(ref)]
    args += ["--inception-weights", str(weights), "--stats-cache", str(tmp_path / "cache")]
    args += ["--gpus-per-node", "0"]  # compared with a CPU computation below
    assert main([*args, "--out", str(out)]) == 0
    row = json.loads((out / "generation.json").read_text())["rows"][0]
    assert row["missing"] == {}

    extractor = InceptionFeatures(pretrained=False)
    extractor.load_state_dict(torch.load(weights, weights_only=True))
    samples, _ = read_adm_npz(row["samples"])
    references, _ = read_adm_npz(ref)
    ours = InceptionMetrics(extractor, "gfid-adm")
    ours.update(samples)
    theirs = InceptionMetrics(extractor, "gfid-adm")
    theirs.update(references)
    expected = ours.compute(theirs)  # the file stores no statistics: those of its images
    for column, key in (("FID", "fid"), ("sFID", "sfid"), ("IS", "inception_score")):
        assert row[column] == pytest.approx(expected[key], rel=1e-6), column
    assert (row["Precision"], row["Recall"]) == (expected["precision"], expected["recall"])
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # spectrum, Inception features

    def unread(path):
        raise AssertionError(f"{path} was read again instead of the cache")

    monkeypatch.setattr(reference_module, "read_adm_npz", unread)
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "generation.json").read_text())["rows"][0]
    for column in ("FID", "sFID", "IS", "Precision", "Recall", "HF ratio"):
        assert again[column] == pytest.approx(row[column], rel=1e-9), column

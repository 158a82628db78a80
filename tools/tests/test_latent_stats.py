"""tools/latent_stats.py: statistics equal the closed form over all latents, and are saved."""

import json

import pytest
import torch

from freqlat.tokenizers import create_tokenizer, from_pretrained


@pytest.fixture
def tool(load_tool):
    return load_tool("latent_stats")


@pytest.fixture(scope="module")
def fa_vae():
    torch.manual_seed(0)
    return create_tokenizer("fa-vae-f16d32-tiny").eval()


def _images(count: int, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(count)
    return torch.rand(count, 3, size, size, generator=generator) * 2 - 1


def test_statistics_are_the_moments_of_every_latent_value(tool, fa_vae):
    images = _images(5)
    stats = tool.compute_latent_statistics(fa_vae, iter(images.split(2)), flip=True)
    with torch.no_grad():
        everything = torch.cat([images, images.flip(-1)])
        latents = fa_vae.encode(everything).mode().double()
    per_channel = latents.transpose(0, 1).flatten(1)
    assert stats.count == per_channel.shape[1] == 10 * 2 * 2
    torch.testing.assert_close(
        stats.channel_mean.double(), per_channel.mean(1), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(
        stats.channel_std.double(), per_channel.std(1, unbiased=False), rtol=1e-5, atol=1e-6
    )
    for name, (start, stop) in fa_vae.latent_groups().items():
        values = per_channel[start:stop]
        assert stats.group_scale(name) == pytest.approx(
            1 / values.std(unbiased=False).item(), rel=1e-5
        )


def test_posterior_samples_are_seeded_and_the_vq_latent_is_the_quantised_map(tool):
    torch.manual_seed(0)
    kl = create_tokenizer("kl-vae-f16d16-tiny").eval()
    images = _images(2)
    first = tool.compute_latent_statistics(kl, iter([images]), sample=True, seed=3)
    second = tool.compute_latent_statistics(kl, iter([images]), sample=True, seed=3)
    mean = tool.compute_latent_statistics(kl, iter([images]))
    assert torch.equal(first.mean, second.mean)
    assert not torch.equal(first.mean, mean.mean)
    vq = create_tokenizer("ms-vq-vae-tiny").eval()
    vq_images = _images(2, size=64)
    with torch.no_grad():
        expected = vq.encode(vq_images).quantized
    assert torch.equal(tool.encode_latent(vq, vq_images), expected)


def test_command_line_saves_json_and_pretrained_directory(tool, tmp_path, write_jpegs, capsys):
    write_jpegs(tmp_path / "photos", 3, size=36)
    json_path, model_dir = tmp_path / "out" / "stats.json", tmp_path / "model"
    status = tool.main(
        [
            "--tokenizer",
            "random:kl-vae-f16d16-tiny",
            "--data",
            str(tmp_path / "photos"),
            "--image-size",
            "32",
            "--num-images",
            "2",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            "--json",
            str(json_path),
            "--save-pretrained",
            str(model_dir),
        ]
    )
    assert status == 0, capsys.readouterr().err
    document = json.loads(json_path.read_text())
    assert document["provenance"]["num_images"] == 2
    assert document["provenance"]["weights"] == "random init, seed 0"
    from_json = tool.read_statistics_json(json_path)
    saved = from_pretrained(model_dir).latent_stats
    assert from_json.count == saved.count == 2 * 2 * 2
    assert torch.equal(from_json.mean, saved.mean) and torch.equal(from_json.m2, saved.m2)
    assert document["summary"]["groups"]["all"]["scale"] == pytest.approx(saved.group_scale("all"))


def test_command_line_errors_are_one_line(tool, tmp_path, capsys):
    with pytest.raises(SystemExit):
        tool.main(["--tokenizer", "random:kl-vae-f16d16-tiny"])  # no output chosen
    args = ["--tokenizer", "random:kl-vae-f16d16-tiny", "--json", str(tmp_path / "s.json")]
    assert tool.main([*args, "--data", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()

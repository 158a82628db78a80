"""tools/latent_stats.py: the command line saves the statistics (their computation is tested in
packages/tokenizers)."""

import json

import pytest
import torch

from freqlat.tokenizers import from_pretrained


@pytest.fixture
def tool(load_tool):
    return load_tool("latent_stats")


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

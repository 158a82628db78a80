"""tools/recon_grid.py: the command line over freqlat.tokenizers.grids (the grid's own tests are
in packages/tokenizers)."""

import numpy as np
import pytest
from PIL import Image

PAD = 2


@pytest.fixture
def tool(load_tool):
    return load_tool("recon_grid")


def test_command_line_with_tiny_tokenizers(tool, tmp_path, write_jpegs, capsys):
    write_jpegs(tmp_path / "photos", 5, size=36)
    out = tmp_path / "grid.png"
    argv = ["--tokenizer", "random:kl-vae-f16d16-tiny", "--data", str(tmp_path / "photos")]
    argv += ["--image-size", "32", "--num-images", "3", "--error-maps", "--device", "cpu"]
    assert tool.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 rows" in printed and "error x4" in printed
    with Image.open(out) as image:
        assert image.size == (PAD + 3 * (32 + PAD), PAD + 3 * (32 + PAD))
    assert tool.main(["--tokenizer", "kl-vae-f16d16-tiny", "--out", str(out)]) == 2
    assert "random:kl-vae-f16d16-tiny" in capsys.readouterr().err


def test_labels_put_a_header_above_the_tiles(tool, tmp_path, write_jpegs, capsys):
    write_jpegs(tmp_path / "photos", 2, size=36)
    argv = ["--tokenizer", "random:kl-vae-f16d16-tiny", "--data", str(tmp_path / "photos")]
    argv += ["--image-size", "32", "--num-images", "2", "--error-maps", "--device", "cpu"]
    assert tool.main([*argv, "--out", str(tmp_path / "plain.png")]) == 0
    assert tool.main([*argv, "--labels", "--out", str(tmp_path / "labelled.png")]) == 0
    with Image.open(tmp_path / "plain.png") as plain, Image.open(tmp_path / "labelled.png") as ours:
        assert ours.width == plain.width and ours.height > plain.height
        header = ours.height - plain.height
        np.testing.assert_array_equal(np.asarray(ours)[header:], np.asarray(plain))

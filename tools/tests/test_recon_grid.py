"""tools/recon_grid.py: tiles land in the right row and column; error maps; the PNG."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image
from torch import nn

PAD = 2


class FixedMap(nn.Module):
    """A stand-in tokenizer whose reconstruction is ``fn(x)``."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, sample=True):
        return SimpleNamespace(recon=self.fn(x), latent=x)


@pytest.fixture
def tool(load_tool):
    return load_tool("recon_grid")


def _tile(grid: torch.Tensor, row: int, column: int, size: int) -> torch.Tensor:
    top, left = PAD + row * (size + PAD), PAD + column * (size + PAD)
    return grid[:, top : top + size, left : left + size]


def test_tiles_are_laid_out_original_then_each_tokenizer_per_row(tool):
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    models = {"same": FixedMap(lambda x: x), "negated": FixedMap(lambda x: -x)}
    grid, columns = tool.reconstruction_grid(images, tool.reconstruct(models, images), padding=PAD)
    assert columns == ["original", "same", "negated"]
    assert grid.shape == (3, PAD + 3 * (16 + PAD), PAD + 3 * (16 + PAD))
    for row in range(3):
        expected = (images[row] + 1) / 2
        torch.testing.assert_close(_tile(grid, row, 0, 16), expected)
        torch.testing.assert_close(_tile(grid, row, 1, 16), expected)
        torch.testing.assert_close(_tile(grid, row, 2, 16), 1 - expected)


def test_error_maps_follow_each_reconstruction(tool):
    images = torch.zeros(2, 3, 8, 8)
    shifted = FixedMap(lambda x: x + 0.25)
    grid, columns = tool.reconstruction_grid(
        images,
        tool.reconstruct({"exact": FixedMap(lambda x: x), "shifted": shifted}, images),
        error_maps=True,
        error_gain=4.0,
        padding=PAD,
    )
    assert columns == ["original", "exact", "exact error x4", "shifted", "shifted error x4"]
    inferno = colormaps["inferno"]
    black = torch.tensor(inferno(0.0)[:3], dtype=torch.float32)
    half = torch.tensor(inferno(128 / 255)[:3], dtype=torch.float32)  # |error| 0.25 x 4 / 2 = 0.5
    torch.testing.assert_close(_tile(grid, 1, 2, 8), black.view(3, 1, 1).expand(3, 8, 8))
    torch.testing.assert_close(_tile(grid, 1, 4, 8), half.view(3, 1, 1).expand(3, 8, 8))


def test_mismatched_shapes_and_bad_gains_are_errors(tool):
    images = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="reconstruction shape"):
        tool.reconstruction_grid(images, {"small": torch.zeros(2, 3, 4, 4)})
    with pytest.raises(ValueError, match="gain"):
        tool.error_map(images, images, gain=0)


def test_saved_png_matches_the_grid(tool, tmp_path):
    images = torch.rand(2, 3, 8, 8) * 2 - 1
    models = {"same": FixedMap(lambda x: x)}
    path, columns = tool.save_reconstruction_grid(models, images, tmp_path / "g" / "grid.png")
    grid, _ = tool.reconstruction_grid(images, tool.reconstruct(models, images))
    saved = np.asarray(Image.open(path).convert("RGB"))
    expected = (grid * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert columns == ["original", "same"]
    np.testing.assert_array_equal(saved, expected)


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


def test_images_are_spread_over_the_split(tool):
    dataset = [(torch.full((3, 2, 2), float(i)), 0) for i in range(10)]
    picked = tool.spread_images(dataset, 4)
    assert picked[:, 0, 0, 0].tolist() == [0.0, 3.0, 6.0, 9.0]

"""Reconstruction grids: tiles land in the right row and column; error maps; labels; the PNG."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image
from torch import nn

from freqlat.tokenizers import grids

PAD = 2


class FixedMap(nn.Module):
    """A stand-in tokenizer whose reconstruction is ``fn(x)``."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, sample=True):
        return SimpleNamespace(recon=self.fn(x), latent=x)


def _tile(grid: torch.Tensor, row: int, column: int, size: int) -> torch.Tensor:
    top, left = PAD + row * (size + PAD), PAD + column * (size + PAD)
    return grid[:, top : top + size, left : left + size]


def test_tiles_are_laid_out_original_then_each_tokenizer_per_row():
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    models = {"same": FixedMap(lambda x: x), "negated": FixedMap(lambda x: -x)}
    grid, columns = grids.reconstruction_grid(
        images, grids.grid_reconstructions(models, images), padding=PAD
    )
    assert columns == ["original", "same", "negated"]
    assert grid.shape == (3, PAD + 3 * (16 + PAD), PAD + 3 * (16 + PAD))
    for row in range(3):
        expected = (images[row] + 1) / 2
        torch.testing.assert_close(_tile(grid, row, 0, 16), expected)
        torch.testing.assert_close(_tile(grid, row, 1, 16), expected)
        torch.testing.assert_close(_tile(grid, row, 2, 16), 1 - expected)


def test_error_maps_follow_each_reconstruction():
    images = torch.zeros(2, 3, 8, 8)
    shifted = FixedMap(lambda x: x + 0.25)
    grid, columns = grids.reconstruction_grid(
        images,
        grids.grid_reconstructions({"exact": FixedMap(lambda x: x), "shifted": shifted}, images),
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


def test_mismatched_shapes_and_bad_gains_are_errors():
    images = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="reconstruction shape"):
        grids.reconstruction_grid(images, {"small": torch.zeros(2, 3, 4, 4)})
    with pytest.raises(ValueError, match="gain"):
        grids.error_map(images, images, gain=0)


def test_saved_png_matches_the_grid(tmp_path):
    images = torch.rand(2, 3, 8, 8) * 2 - 1
    models = {"same": FixedMap(lambda x: x)}
    path, columns = grids.save_reconstruction_grid(models, images, tmp_path / "g" / "grid.png")
    grid, _ = grids.reconstruction_grid(images, grids.grid_reconstructions(models, images))
    saved = np.asarray(Image.open(path).convert("RGB"))
    expected = (grid * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert columns == ["original", "same"]
    np.testing.assert_array_equal(saved, expected)


def test_images_are_spread_over_the_split():
    dataset = [(torch.full((3, 2, 2), float(i)), 0) for i in range(10)]
    picked = grids.spread_images(dataset, 4)
    assert picked[:, 0, 0, 0].tolist() == [0.0, 3.0, 6.0, 9.0]


def _ink(header: torch.Tensor) -> torch.Tensor:
    """Columns of a header image where text is drawn (any pixel darker than white)."""
    return (header < 0.9).any(dim=0).any(dim=0)


@pytest.mark.parametrize("error_maps", [False, True])
def test_labels_name_each_tokenizer_over_its_columns_and_each_error_map(error_maps):
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    recons = {"kl-vae-f16d16-tiny (EMA)": images, "fa-vae-f16d64-tiny (EMA)": -images}
    plain, columns = grids.reconstruction_grid(images, recons, error_maps=error_maps)
    labelled, same = grids.reconstruction_grid(images, recons, error_maps=error_maps, labels=True)
    assert same == columns
    header_height = labelled.shape[1] - plain.shape[1]
    assert header_height > 0 and torch.equal(labelled[:, header_height:], plain)

    rows = grids.header_spans(list(recons), tile=64, padding=PAD, error_maps=error_maps)
    first = [text for *_, text in rows[0]]
    assert first == ["original", *recons]
    if error_maps:  # under each tokenizer: which column is the reconstruction, which its error
        assert [text for *_, text in rows[1]] == ["recon", "|error| x4"] * 2
        assert rows[0][1][:2] == (rows[1][0][0], rows[1][1][1])  # the name spans both
    cells = [span for row in rows for span in row]
    for left, right, _ in cells:  # every cell starts on its column's first pixel
        assert (left - PAD) % (64 + PAD) == 0 and right - left >= 64
    ink = _ink(labelled[:, :header_height])
    inside = torch.zeros_like(ink)
    for left, right, _ in cells:
        assert ink[left:right].any(), f"no text over columns {left}..{right}"
        inside[left:right] = True
    assert not (ink & ~inside).any(), "header text runs outside its cells"


def test_a_label_wider_than_its_column_is_wrapped_onto_more_lines():
    narrow = grids.render_header(40, [[(2, 38, "a-very-long-tokenizer-name (EMA)")]])
    short = grids.render_header(40, [[(2, 38, "kl")]])
    assert narrow.shape[1] > short.shape[1]
    assert not _ink(narrow)[:2].any() and not _ink(narrow)[38:].any()

"""Reconstruction grids: originals and every tokenizer's reconstructions side by side.

One row per image; the columns are ``original | tokenizer A | tokenizer B | ...`` in the order
given. With ``error_maps`` each reconstruction is followed by its error map: the per-pixel
absolute error averaged over RGB, times ``error_gain``, on matplotlib's inferno colour map
(black = exact; at gain g, full brightness is a mean absolute error of 2/g in [-1, 1] units).
Reconstructions are decodes of the posterior mean (or the quantised latent), clamped to
[-1, 1]. With ``labels`` a header names the columns: each tokenizer over its columns, and,
with error maps, ``recon`` and ``|error| x g`` under it.

Error maps need matplotlib (``pip install 'freqlat-tokenizers[grids]'``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn
from torch.utils.data import Dataset
from torchvision.utils import make_grid, save_image

HeaderSpan = tuple[int, int, str]
"""A header cell: left and right pixel columns (right exclusive) and its text."""

_MARGIN = 2  # pixels around each line of header text


def error_map(original: Tensor, recon: Tensor, gain: float = 4.0) -> Tensor:
    """Colour-mapped error ``N x 3 x H x W`` in [0, 1]: mean |x - x_hat| over RGB, times ``gain / 2``."""
    if original.shape != recon.shape:
        raise ValueError(f"shapes differ: {tuple(original.shape)} and {tuple(recon.shape)}")
    if gain <= 0:
        raise ValueError(f"error gain must be positive, got {gain}")
    try:
        from matplotlib import colormaps
    except ImportError as exc:
        raise ImportError(
            "error maps use matplotlib's inferno colour map: pip install 'freqlat-tokenizers[grids]'"
        ) from exc
    error = ((original - recon).abs().mean(dim=1) * gain / 2).clamp(0.0, 1.0)
    palette = torch.tensor(colormaps["inferno"](torch.linspace(0, 1, 256).numpy())[:, :3])
    index = (error * 255).round().long().cpu()
    return palette.to(original.dtype)[index].permute(0, 3, 1, 2).to(original.device)


@torch.no_grad()
def grid_reconstructions(
    models: Mapping[str, nn.Module], images: Tensor, device: str | torch.device = "cpu"
) -> dict[str, Tensor]:
    """Each tokenizer's reconstruction of ``images`` (posterior mean / quantised), clamped, on CPU."""
    device = torch.device(device)
    recons = {}
    for name, model in models.items():
        model.to(device).eval()
        output = model(images.to(device), sample=False)
        recons[name] = output.recon.float().clamp(-1.0, 1.0).cpu()
    return recons


def header_spans(
    names: Sequence[str],
    *,
    tile: int,
    padding: int,
    error_maps: bool = False,
    error_gain: float = 4.0,
) -> list[list[HeaderSpan]]:
    """The header's rows of the grid of ``names``: who each column is, and which is an error map.

    Row one: ``original`` over the first column, each tokenizer's name over its column (and its
    error map's). Row two, with error maps: ``recon`` and ``|error| x g`` under each.
    """
    step = tile + padding
    per_model = 2 if error_maps else 1
    first: list[HeaderSpan] = [(padding, padding + tile, "original")]
    second: list[HeaderSpan] = []
    for index, name in enumerate(names):
        left = padding + (1 + per_model * index) * step
        first.append((left, left + per_model * step - padding, name))
        if error_maps:
            second.append((left, left + tile, "recon"))
            second.append((left + step, left + step + tile, f"|error| x{error_gain:g}"))
    return [first, second] if error_maps else [first]


def _wrap(text: str, width: int, font: ImageFont.ImageFont) -> list[str]:
    """Lines of ``text`` no wider than ``width`` pixels, broken after spaces, '-', '_' and '/'."""
    lines: list[str] = []
    line = ""
    for piece in re.split(r"(?<=[ \-_/])", text):
        if font.getlength((line + piece).rstrip()) <= width:
            line += piece
            continue
        if line.strip():
            lines.append(line.rstrip())
        line = ""
        for char in piece:  # a piece wider than the cell is broken anywhere
            if line and font.getlength(line + char) > width:
                lines.append(line)
                line = ""
            line += char
    if line.strip():
        lines.append(line.rstrip())
    return lines


def render_header(width: int, rows: Sequence[Sequence[HeaderSpan]]) -> Tensor:
    """The header image ``3 x h x width`` in [0, 1]: black text, centred in its cell, on white."""
    font = ImageFont.load_default()
    line_height = font.getbbox("Ag|")[3] + _MARGIN
    wrapped = [
        [(left, right, _wrap(text, right - left, font)) for left, right, text in row]
        for row in rows
    ]
    heights = [max(len(lines) for *_, lines in row) * line_height + 2 * _MARGIN for row in wrapped]
    image = Image.new("RGB", (width, sum(heights)), "white")
    draw = ImageDraw.Draw(image)
    top = 0
    for row, height in zip(wrapped, heights, strict=True):
        for left, right, lines in row:
            y = top + _MARGIN
            for line in lines:
                x = left + (right - left - font.getlength(line)) / 2
                draw.text((x, y), line, fill="black", font=font)
                y += line_height
        top += height
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255


def reconstruction_grid(
    images: Tensor,
    recons: Mapping[str, Tensor],
    *,
    error_maps: bool = False,
    error_gain: float = 4.0,
    padding: int = 2,
    labels: bool = False,
) -> tuple[Tensor, list[str]]:
    """Lay out the grid: returns ``(3 x H x W image in [0, 1], column names)``.

    ``images`` and every reconstruction are N x 3 x H x W in [-1, 1]. With ``labels`` the
    :func:`header_spans` header is stacked above the tiles.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected N x 3 x H x W images, got {tuple(images.shape)}")
    columns = ["original"]
    tiles = [(images.float().cpu() + 1) / 2]
    for name, recon in recons.items():
        if recon.shape != images.shape:
            raise ValueError(
                f"{name}: reconstruction shape {tuple(recon.shape)} != {tuple(images.shape)}"
            )
        columns.append(name)
        tiles.append((recon.float().cpu() + 1) / 2)
        if error_maps:
            columns.append(f"{name} error x{error_gain:g}")
            tiles.append(error_map(images.float().cpu(), recon.float().cpu(), error_gain))
    # row-major: image i's tiles, in column order
    stacked = torch.stack(tiles, dim=1).flatten(0, 1).clamp(0.0, 1.0)
    grid = make_grid(stacked, nrow=len(columns), padding=padding, pad_value=1.0)
    if labels:
        rows = header_spans(
            list(recons),
            tile=images.shape[-1],
            padding=padding,
            error_maps=error_maps,
            error_gain=error_gain,
        )
        grid = torch.cat([render_header(grid.shape[-1], rows), grid], dim=1)
    return grid, columns


def save_reconstruction_grid(
    models: Mapping[str, nn.Module],
    images: Tensor,
    path: str | Path,
    *,
    error_maps: bool = False,
    error_gain: float = 4.0,
    labels: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[Path, list[str]]:
    """Reconstruct ``images`` with every model and save the grid as a PNG; returns the columns."""
    grid, columns = reconstruction_grid(
        images,
        grid_reconstructions(models, images, device),
        error_maps=error_maps,
        error_gain=error_gain,
        labels=labels,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return path, columns


def spread_images(dataset: Dataset, num_images: int) -> Tensor:
    """``num_images`` images evenly spaced over ``dataset`` (first and last included)."""
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if len(dataset) == 0:
        raise ValueError("the dataset has no images")
    count = min(num_images, len(dataset))
    indices = torch.linspace(0, len(dataset) - 1, count).round().long().tolist()
    return torch.stack([dataset[i][0] for i in indices])

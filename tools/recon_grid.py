"""Reconstruction grids: originals and every tokenizer's reconstructions side by side, as a PNG.

One row per image; the columns are ``original | tokenizer A | tokenizer B | ...`` in the order
given. With ``--error-maps`` each reconstruction is followed by its error map: the per-pixel
absolute error averaged over RGB, times ``--error-gain``, on matplotlib's inferno colour map
(black = exact; at gain g, full brightness is a mean absolute error of 2/g in [-1, 1] units).
Reconstructions are decodes of the posterior mean (or the quantised latent), clamped to
[-1, 1], as in freqlat-eval. Images are taken evenly spaced over the split, so that a grid
shows more than one photograph. The column order is printed.

``--tokenizer`` takes what ``freqlat-eval`` takes (a directory, an official preset, or
``random:PRESET``); ``--data`` is ``embedded``, an ImageNet root or any image folder.

    uv run --all-packages python tools/recon_grid.py --tokenizer runs/kl/export/ema runs/fa/export/ema --data /data/imagenet --image-size 256 --num-images 8 --error-maps --out grid.png
    uv run --all-packages python tools/recon_grid.py --tokenizer random:kl-vae-f16d16-tiny --data embedded --image-size 64 --out /tmp/grid.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from matplotlib import colormaps
from torch import nn
from torch.utils.data import Dataset
from torchvision.utils import make_grid, save_image

from freqlat.core import open_dataset
from freqlat.tokenizers import load_tokenizer, unique_names


def error_map(original: torch.Tensor, recon: torch.Tensor, gain: float = 4.0) -> torch.Tensor:
    """Colour-mapped error ``N x 3 x H x W`` in [0, 1]: mean |x - x_hat| over RGB, times ``gain / 2``."""
    if original.shape != recon.shape:
        raise ValueError(f"shapes differ: {tuple(original.shape)} and {tuple(recon.shape)}")
    if gain <= 0:
        raise ValueError(f"error gain must be positive, got {gain}")
    error = ((original - recon).abs().mean(dim=1) * gain / 2).clamp(0.0, 1.0)
    palette = torch.tensor(colormaps["inferno"](torch.linspace(0, 1, 256).numpy())[:, :3])
    index = (error * 255).round().long().cpu()
    return palette.to(original.dtype)[index].permute(0, 3, 1, 2).to(original.device)


@torch.no_grad()
def reconstruct(
    models: Mapping[str, nn.Module], images: torch.Tensor, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Each tokenizer's reconstruction of ``images`` (posterior mean / quantised), clamped, on CPU."""
    device = torch.device(device)
    recons = {}
    for name, model in models.items():
        model.to(device).eval()
        output = model(images.to(device), sample=False)
        recons[name] = output.recon.float().clamp(-1.0, 1.0).cpu()
    return recons


def reconstruction_grid(
    images: torch.Tensor,
    recons: Mapping[str, torch.Tensor],
    *,
    error_maps: bool = False,
    error_gain: float = 4.0,
    padding: int = 2,
) -> tuple[torch.Tensor, list[str]]:
    """Lay out the grid: returns ``(3 x H x W image in [0, 1], column names)``.

    ``images`` and every reconstruction are N x 3 x H x W in [-1, 1].
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
    return grid, columns


def save_reconstruction_grid(
    models: Mapping[str, nn.Module],
    images: torch.Tensor,
    path: str | Path,
    *,
    error_maps: bool = False,
    error_gain: float = 4.0,
    device: str | torch.device = "cpu",
) -> tuple[Path, list[str]]:
    """Reconstruct ``images`` with every model and save the grid as a PNG; returns the columns."""
    grid, columns = reconstruction_grid(
        images, reconstruct(models, images, device), error_maps=error_maps, error_gain=error_gain
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return path, columns


def spread_images(dataset: Dataset, num_images: int) -> torch.Tensor:
    """``num_images`` images evenly spaced over ``dataset`` (first and last included)."""
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if len(dataset) == 0:
        raise ValueError("the dataset has no images")
    count = min(num_images, len(dataset))
    indices = torch.linspace(0, len(dataset) - 1, count).round().long().tolist()
    return torch.stack([dataset[i][0] for i in indices])


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokenizer", nargs="+", required=True, help="as for freqlat-eval")
    parser.add_argument(
        "--data", default="embedded", help="'embedded', an ImageNet root or a folder"
    )
    parser.add_argument("--split", default="val")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--num-images", type=int, default=8, help="rows of the grid")
    parser.add_argument("--error-maps", action="store_true", help="add an error map per tile")
    parser.add_argument("--error-gain", type=float, default=4.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    try:
        loaded = [load_tokenizer(spec) for spec in args.tokenizer]
        names = unique_names([t.name for t in loaded])
        models = dict(zip(names, (t.model for t in loaded), strict=True))
        images = spread_images(
            open_dataset(args.data, args.split, args.image_size), args.num_images
        )
        path, columns = save_reconstruction_grid(
            models,
            images,
            args.out,
            error_maps=args.error_maps,
            error_gain=args.error_gain,
            device=args.device,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {len(images)} rows; columns: {' | '.join(columns)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

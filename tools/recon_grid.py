"""Reconstruction grids: originals and every tokenizer's reconstructions side by side, as a PNG.

One row per image; the columns are ``original | tokenizer A | tokenizer B | ...`` in the order
given. With ``--error-maps`` each reconstruction is followed by its error map: the per-pixel
absolute error averaged over RGB, times ``--error-gain``, on matplotlib's inferno colour map
(black = exact; at gain g, full brightness is a mean absolute error of 2/g in [-1, 1] units).
With ``--labels`` a header above the tiles names each column's tokenizer and, with error maps,
which column is its reconstruction and which its error map. Reconstructions are decodes of the
posterior mean (or the quantised latent), clamped to [-1, 1], as in freqlat-eval's
deterministic protocol. Images are taken evenly spaced over the split, so that a grid shows more
than one photograph. The column order is printed. The grid itself is
``freqlat.tokenizers.grids``; this script is its command line.

``--tokenizer`` takes what ``freqlat-eval`` takes (a directory, an official preset, or
``random:PRESET``); ``--data`` is ``embedded``, an ImageNet root or any image folder.

    uv run --all-packages python tools/recon_grid.py --tokenizer runs/kl/export/ema runs/fa/export/ema --data /data/imagenet --image-size 256 --num-images 8 --error-maps --labels --out grid.png
    uv run --all-packages python tools/recon_grid.py --tokenizer random:kl-vae-f16d16-tiny --data embedded --image-size 64 --out /tmp/grid.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from freqlat.core import open_dataset
from freqlat.tokenizers import load_tokenizer, unique_names
from freqlat.tokenizers.grids import save_reconstruction_grid, spread_images


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
    parser.add_argument("--labels", action="store_true", help="name the columns in a header")
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
            labels=args.labels,
            device=args.device,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {len(images)} rows; columns: {' | '.join(columns)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

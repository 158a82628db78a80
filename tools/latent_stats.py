"""Compute a tokenizer's latent statistics over a dataset and save them.

The statistics are freqlat.tokenizers' ``LatentStatistics`` (float64 Welford): the per-channel
mean and std that LightningDiT normalises with, and the global 1/std scale of each channel group
(MAR's scale factor; FA-VAE has one per branch, ``high`` and ``low``). Latents are the posterior
mean by default (``--sample`` draws from the posterior instead; the VQ model's latent is its
quantised map), optionally with each image's mirror image too (``--flip``, as LightningDiT's
latent cache does). LightningDiT normalises with the channel statistics of 10k training
latents (the default ``--num-images``); the FA-VAE author's per-branch scales come from a pass
over ImageNet's training set (docs/reproduction.md). The accumulation is
``freqlat.tokenizers.compute_latent_statistics`` over the tokenizer's ``encode_latent``.

``--tokenizer`` takes what ``freqlat-eval`` takes: a ``save_pretrained`` directory, a
``freqlat-train`` run directory, an official preset (``va-vae-f16d32``, ``kl-vae-f16d16``,
``ms-vq-vae``, or ``PRESET=PATH``), or ``random:PRESET``. ``--data`` is ``embedded``, an
ImageNet root or any image folder. The result goes into a ``save_pretrained`` directory
(``--save-pretrained DIR``: weights, config and ``latent_stats.json``) and/or a JSON file
(``--json FILE``: the statistics and how they were computed).

    uv run --all-packages python tools/latent_stats.py --tokenizer runs/fa-vae/export/ema --data /data/imagenet --num-images 10000 --save-pretrained runs/fa-vae/export/ema
    uv run --all-packages python tools/latent_stats.py --tokenizer random:kl-vae-f16d16-tiny --data embedded --image-size 64 --json stats.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from freqlat.core import open_dataset
from freqlat.tokenizers import LatentStatistics, compute_latent_statistics, load_tokenizer


def first_images(
    dataset: Dataset, num_images: int | None, batch_size: int, num_workers: int = 0
) -> Iterator[torch.Tensor]:
    """The first ``num_images`` images of ``dataset`` (all if None) in order, in batches."""
    total = len(dataset) if num_images is None else min(num_images, len(dataset))
    if total < 1:
        raise ValueError("the dataset has no images to use")
    loader = DataLoader(
        Subset(dataset, range(total)), batch_size=batch_size, num_workers=num_workers
    )
    for images, _ in loader:
        yield images


def statistics_summary(stats: LatentStatistics) -> dict[str, Any]:
    """Readable derived values: channel mean/std, and each group's mean, std and scale."""
    summary: dict[str, Any] = {
        "num_values_per_channel": stats.count,
        "channel_mean": stats.channel_mean.tolist(),
        "channel_std": stats.channel_std.tolist(),
        "groups": {},
    }
    for name in stats.groups:
        mean, std = stats.group_moments(name)
        summary["groups"][name] = {"mean": mean, "std": std, "scale": stats.group_scale(name)}
    return summary


def write_statistics_json(
    path: str | Path, stats: LatentStatistics, provenance: dict[str, Any]
) -> Path:
    """Write ``{"provenance", "summary", "statistics"}``; ``statistics`` reloads with
    ``LatentStatistics.from_dict``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "provenance": provenance,
        "summary": statistics_summary(stats),
        "statistics": stats.to_dict(),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def read_statistics_json(path: str | Path) -> LatentStatistics:
    """Load the statistics written by :func:`write_statistics_json`."""
    return LatentStatistics.from_dict(json.loads(Path(path).read_text())["statistics"])


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tokenizer", required=True, help="directory, official preset or random:PRESET"
    )
    parser.add_argument(
        "--data", default="embedded", help="'embedded', an ImageNet root or a folder"
    )
    parser.add_argument("--split", default="train")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--num-images", type=int, default=10000, help="first N images of the split")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--sample", action="store_true", help="posterior samples, not means")
    parser.add_argument("--flip", action="store_true", help="also encode mirrored images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="write the statistics to this JSON file")
    parser.add_argument(
        "--save-pretrained", type=Path, help="save the tokenizer with its statistics here"
    )
    args = parser.parse_args(argv)
    if args.json is None and args.save_pretrained is None:
        parser.error("give --json FILE and/or --save-pretrained DIR")

    try:
        loaded = load_tokenizer(args.tokenizer, seed=args.seed)
        dataset = open_dataset(args.data, args.split, args.image_size)
        batches = first_images(dataset, args.num_images, args.batch_size, args.num_workers)
        stats = compute_latent_statistics(
            loaded.model,
            batches,
            sample=args.sample,
            flip=args.flip,
            seed=args.seed,
            device=args.device,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = statistics_summary(stats)
    print(f"{loaded.name}: {stats.count} values per channel")
    for name, group in summary["groups"].items():
        print(
            f"  group {name}: mean {group['mean']:.6g} std {group['std']:.6g} scale {group['scale']:.6g}"
        )
    if args.json is not None:
        provenance = {
            "tokenizer": loaded.name,
            "weights": loaded.source,
            "data": str(args.data),
            "split": args.split,
            "image_size": args.image_size,
            "num_images": min(args.num_images, len(dataset)),
            "latent": "posterior sample" if args.sample else "posterior mean / quantised",
            "flip": args.flip,
            "seed": args.seed,
        }
        print(f"wrote {write_statistics_json(args.json, stats, provenance)}")
    if args.save_pretrained is not None:
        model = loaded.model.cpu()
        model.latent_stats = stats
        print(
            f"saved the tokenizer with its statistics to {model.save_pretrained(args.save_pretrained)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: end-to-end tokenizer training throughput against the bare training step.

Runs ``freqlat-train``'s real loop (JPEG decoding in DataLoader workers, ADM crop and flip,
host-to-device copy, generator and discriminator steps, EMA, logging) on a folder of JPEGs, and in
the same run times the bare step of ``benchmarks/bench_tokenizers.py`` (same model, every loss term on,
one batch already on the device). Reports images/s per GPU for both, the share of the loop's
wall time spent waiting for data, and end-to-end / bare: the data pipeline must not be the bound
(target: at least 95%).

LPIPS's VGG16 and the VF loss's ViT-L/14 are given weights files of random values written to a
temporary folder (the loop refuses to run without files, and never invents weights itself);
timing does not depend on the values. Without ``--folder``, ImageNet-sized JPEGs cut from
scikit-image's photographs are written to a temporary folder.

    uv run --all-packages python benchmarks/bench_training.py [--preset va-vae-f16d32] [--precision bf16] [--append benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import bench_tokenizers
import torch
from benchlib import (
    device_name,
    emit,
    freqlat_train,
    logged_throughput,
    loop_against_bare_table,
    write_imagenet_like_jpegs,
)

from freqlat.metrics import LPIPS, perceptual
from freqlat.metrics.weights import file_sha256
from freqlat.tokenizers import create_tokenizer


def random_weight_files(folder: Path, with_vit: bool) -> dict[str, Path]:
    """Files of random LPIPS-VGG16 trunk (and DINOv2 ViT-L/14) weights, as the loaders read them."""
    trunk = LPIPS("vgg", pretrained=False).features.state_dict()
    files = {"lpips_trunk": folder / "vgg16-random.pth"}
    torch.save({f"features.{k}": v for k, v in trunk.items()}, files["lpips_trunk"])
    # Loaders accept only the published VGG16 file; for timing, accept this random one by its
    # own sha256 (in this process only).
    pinned = replace(perceptual.TRUNK_WEIGHTS["vgg"], sha256=file_sha256(files["lpips_trunk"]))
    perceptual.TRUNK_WEIGHTS["vgg"] = pinned
    if with_vit:
        files["foundation_weights"] = folder / "vit-random.pth"
        vit = bench_tokenizers.foundation_vit(torch.device("cpu"), small=False).vit
        torch.save(vit.state_dict(), files["foundation_weights"])
    return files


def end_to_end(preset, run_dir, folder, weights, args) -> dict[str, float]:
    """Throughput of ``args.steps`` steps of the real training loop (``freqlat-train`` run as a
    command; with one log line at the end, its logged interval is every step but the first)."""
    overrides = {
        "run_dir": str(run_dir),
        "data": str(folder),
        "image_size": args.size,
        "steps": args.steps,
        "batch_size": args.batch,
        "num_workers": args.workers,
        "precision": args.precision,
        "disc_start": 0,
        "log_every": args.steps,
        "grid_every": 10 * args.steps,
        "checkpoint_every": 10 * args.steps,
        "lpips_trunk": str(weights["lpips_trunk"]),
    }
    if "foundation_weights" in weights:
        overrides["foundation_weights"] = str(weights["foundation_weights"])
    if preset.endswith("-tiny"):  # a CPU smoke run: LPIPS on, no VF loss (a ViT-L is too slow)
        overrides.update(perceptual_weight=1.0, use_vf=False)
    freqlat_train(["tokenizer", "--preset", preset], overrides)
    return logged_throughput(run_dir, args.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="va-vae-f16d32")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16, help="per GPU")
    parser.add_argument("--steps", type=int, default=200, help="steps of the real loop")
    parser.add_argument("--iters", type=int, default=20, help="timed bare steps")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--folder", type=Path, default=None, help="a folder of JPEGs")
    parser.add_argument("--num-images", type=int, default=4000, help="JPEGs to write")
    parser.add_argument("--append", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    small = args.preset.endswith("-tiny")
    bf16 = args.precision == "bf16"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = args.folder
        if folder is None:
            folder = tmp / "jpegs"
            write_imagenet_like_jpegs(folder, args.num_images)
        weights = random_weight_files(tmp, with_vit=not small)
        model = create_tokenizer(args.preset).to(device)
        bare, _ = bench_tokenizers.training_step_throughput(
            model,
            device,
            args.size,
            args.batch,
            args.iters,
            small,
            bf16,
            use_vf=False if small else None,
        )
        del model
        loop = end_to_end(args.preset, tmp / "run", folder, weights, args)
    table = loop_against_bare_table(
        f"Training throughput, {args.preset} at {args.size} px on {device_name(device)}",
        f"{args.precision}, batch {args.batch} per GPU, {args.workers} DataLoader workers, "
        f"{args.steps} loop steps (the first left out), `benchmarks/bench_training.py`.",
        "bare step (benchmarks/bench_tokenizers.py, batch on device)",
        "freqlat-train loop on JPEGs",
        bare,
        loop,
    )
    emit(table, args.append)


if __name__ == "__main__":
    main()

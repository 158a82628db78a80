"""Benchmark: the real generator training loop on cached latents against the bare training step.

Caches latents with ``freqlat-train cache-latents`` (a random-weight tokenizer: the values do not
change the timing) from ImageNet-sized JPEGs cut from scikit-image's photographs, then runs
``freqlat-train generator`` (as a command: shard reads in DataLoader workers, normalisation,
host-to-device copy, the family's objective, AdamW, EMA, logging) and, in the same run, times
the bare step: the same model, objective, optimiser step and EMA update on one batch of the
cache's latents already on the device, before and after the loop (their mean is the reference:
on a shared machine the load drifts). Reports img/s per process for both, the share of the
loop's wall time spent waiting for data, and end-to-end / bare: the data pipeline must not be the
bound (target: at least 95%).

    uv run --all-packages python benchmarks/bench_generator_training.py [--device cpu] \\
        [--preset lightningdit-tiny] [--append benchmarks/RESULTS.md]

Defaults: on a GPU LightningDiT-XL/1 on 16 x 16 x 32 latents of a random VA-VAE (256 px), batch
256, bf16; on a CPU ``lightningdit-tiny`` on 4 x 4 x 16 latents of a random tiny KL-VAE (64 px),
batch 32, fp32.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from benchlib import (
    device_name,
    emit,
    freqlat_train,
    logged_throughput,
    loop_against_bare_table,
    throughput,
    write_imagenet_like_jpegs,
)

from freqlat.core import EMA, autocast, grad_scaler, optimizer_step
from freqlat.generators import LatentCache, LatentDataset, create_generator, training_objective

GPU_DEFAULTS = {
    "preset": "lightningdit-xl-1",
    "tokenizer": "random:va-vae-f16d32",
    "size": 256,
    "batch": 256,
    "precision": "bf16",
    "workers": 8,
    "num_images": 8192,
    "steps": 100,
}
CPU_DEFAULTS = {
    "preset": "lightningdit-tiny",
    "tokenizer": "random:kl-vae-f16d16-tiny",
    "size": 64,
    "batch": 32,
    "precision": "fp32",
    "workers": 1,
    "num_images": 512,
    "steps": 60,
}


def bare_step_throughput(cache_dir: Path, args, device: torch.device) -> float:
    """Img/s of the bare step: the loop's model (the preset on the cache's latents), objective,
    AdamW step (the preset recipe's betas) and EMA update on one batch already on the device."""
    cache = LatentCache(cache_dir)
    channels, side, _ = cache.manifest.latent_shape
    torch.manual_seed(0)
    model = create_generator(args.preset, in_channels=channels, input_size=side).to(device).train()
    objective = training_objective(model)
    dataset = LatentDataset(cache)
    latents = torch.stack([dataset[i][0] for i in range(args.batch)]).to(device)
    latents = cache.latent_space.normalize(latents)
    labels = torch.tensor([dataset[i][1] for i in range(args.batch)], device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-4, betas=(0.9, 0.95), weight_decay=0.0)
    scaler = grad_scaler(args.precision, device)
    ema = EMA(model, decay=0.9999)

    def step() -> None:
        with autocast(args.precision, device):
            terms = objective.training_losses(model, latents, labels)
        optimizer_step(terms["loss"], optimizer, scaler, params)
        ema.update(model)

    return throughput(step, args.batch, device, args.iters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", help="a lightningdit-* preset")
    parser.add_argument("--tokenizer", help="the tokenizer spec of the cache")
    parser.add_argument("--size", type=int, help="image size")
    parser.add_argument("--batch", type=int, help="per process")
    parser.add_argument("--precision", choices=("fp32", "bf16"))
    parser.add_argument("--workers", type=int, help="DataLoader workers of the loop")
    parser.add_argument("--num-images", type=int, help="JPEGs to write and cache")
    parser.add_argument("--steps", type=int, help="steps of the real loop")
    parser.add_argument("--iters", type=int, default=20, help="timed bare steps")
    parser.add_argument("--append", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    for key, value in (GPU_DEFAULTS if device.type == "cuda" else CPU_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not args.preset.startswith("lightningdit-"):
        parser.error("the bare step is written for the flow family: give a lightningdit-* preset")
    gpus = 1 if device.type == "cuda" else 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_imagenet_like_jpegs(tmp / "jpegs", args.num_images)
        cache = tmp / "cache"
        freqlat_train(
            ["cache-latents"],
            {
                "tokenizer": args.tokenizer, "data": tmp / "jpegs", "out": cache,
                "image_size": args.size, "batch_size": 64, "num_workers": args.workers,
                "gpus_per_node": gpus,
            },
        )  # fmt: skip
        before = bare_step_throughput(cache, args, device)
        run_dir = tmp / "run"
        freqlat_train(
            ["generator", "--preset", args.preset],
            {
                "latents": cache, "run_dir": run_dir, "steps": args.steps,
                "batch_size": args.batch, "num_workers": args.workers,
                "precision": args.precision, "log_every": args.steps,
                "grid_every": 10 * args.steps, "checkpoint_every": args.steps,
                "gpus_per_node": gpus,
            },
        )  # fmt: skip
        loop = logged_throughput(run_dir, args.steps)
        after = bare_step_throughput(cache, args, device)
    bare = (before + after) / 2  # timed on both sides of the loop: a shared machine drifts
    table = loop_against_bare_table(
        f"Generator training throughput, {args.preset} on cached latents of {args.tokenizer} "
        f"at {args.size} px, on {device_name(device)}",
        f"{args.precision}, batch {args.batch} per process, {args.workers} DataLoader workers, "
        f"{args.steps} loop steps (the first left out), {args.num_images} cached images, "
        "`benchmarks/bench_generator_training.py`.",
        f"bare step (objective, AdamW, EMA; batch on device), mean of {before:.1f} before and "
        f"{after:.1f} after the loop",
        "freqlat-train generator on the cache",
        bare,
        loop,
    )
    emit(table, args.append)


if __name__ == "__main__":
    main()

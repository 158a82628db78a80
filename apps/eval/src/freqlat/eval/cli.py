"""``freqlat-eval``: measure tokenizers and write result tables.

Usage::

    freqlat-eval recon --tokenizer SPEC [SPEC ...] --data ROOT|embedded --num-images N
                       [--image-size 256] [--batch-size 32] [--num-workers 4] [--out DIR]
                       [--lpips-trunk PATH] [--inception-weights PATH]
                       [--rfid-protocol rfid-seed|rfid-lightningdit]
                       [--recon-protocol seed|deterministic] [--seed 0]
                       [--launcher local|debug|slurm] [--nodes N] [--gpus-per-node G] ...

A SPEC is a save_pretrained directory, a freqlat-train run directory, an official preset
(``PRESET`` or ``PRESET=PATH``) or ``random:PRESET`` (see :mod:`freqlat.eval.sources`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from freqlat.core import LaunchOptions, launch, setup_logging
from freqlat.eval.job import ReconEvalJob, ReconEvalSettings
from freqlat.eval.recon import RECON_PROTOCOLS
from freqlat.metrics import PROTOCOLS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="freqlat-eval", description="Evaluate tokenizers.")
    commands = parser.add_subparsers(dest="command", required=True)
    recon = commands.add_parser("recon", help="the reconstruction table")
    recon.add_argument("--tokenizer", nargs="+", required=True, metavar="SPEC")
    recon.add_argument("--data", default="embedded", help="'embedded', ImageNet root or folder")
    recon.add_argument("--split", default="val")
    recon.add_argument("--num-images", type=int, required=True)
    recon.add_argument("--image-size", type=int, default=256)
    recon.add_argument("--batch-size", type=int, default=32)
    recon.add_argument("--num-workers", type=int, default=4, help="image decoding processes")
    recon.add_argument("--out", default="results/recon", help="directory for recon.csv/json/md")
    recon.add_argument("--lpips-trunk", default=None, help="torchvision vgg16 weights file")
    recon.add_argument("--inception-weights", default=None, help="FID Inception weights file")
    recon.add_argument(
        "--rfid-protocol", default="rfid-seed", choices=[p for p in PROTOCOLS if "rfid" in p]
    )
    recon.add_argument(
        "--recon-protocol",
        default="seed",
        choices=list(RECON_PROTOCOLS),
        help="crop, posterior sample or mode, clamping (default: as the seed README measured)",
    )
    recon.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the posterior samples and random:PRESET weights",
    )
    recon.add_argument("--launcher", default="local", choices=["local", "debug", "slurm"])
    recon.add_argument("--nodes", type=int, default=1)
    recon.add_argument("--gpus-per-node", type=int, default=1)
    recon.add_argument("--cpus-per-task", type=int, default=8)
    recon.add_argument("--partition", default=None)
    recon.add_argument("--account", default=None)
    recon.add_argument("--qos", default=None)
    recon.add_argument("--timeout-min", type=int, default=4 * 60)
    recon.add_argument(
        "--slurm-additional-parameters", default="{}", help="JSON object of extra sbatch options"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``freqlat-eval``; returns the exit code (2 on a bad command)."""
    args = _parser().parse_args(argv)
    setup_logging()
    try:
        extra = json.loads(args.slurm_additional_parameters)
        if not isinstance(extra, dict):
            raise ValueError("--slurm-additional-parameters must be a JSON object")
        settings = ReconEvalSettings(
            tokenizers=list(args.tokenizer),
            data=args.data,
            split=args.split,
            num_images=args.num_images,
            image_size=args.image_size,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            out_dir=args.out,
            lpips_trunk=args.lpips_trunk,
            inception_weights=args.inception_weights,
            rfid_protocol=args.rfid_protocol,
            recon_protocol=args.recon_protocol,
            seed=args.seed,
        )
        options = LaunchOptions(
            launcher=args.launcher,
            nodes=args.nodes,
            gpus_per_node=args.gpus_per_node,
            tasks_per_node=max(1, args.gpus_per_node),
            cpus_per_task=args.cpus_per_task,
            partition=args.partition,
            account=args.account,
            qos=args.qos,
            timeout_min=args.timeout_min,
            job_name="freqlat-eval-recon",
            slurm_additional_parameters=extra,
        )
        job = ReconEvalJob(settings)
        result = launch(job, options, Path(args.out) / "submitit")
        if args.launcher == "debug":
            result.result()
        elif args.launcher == "slurm":
            print(f"submitted job {result.job_id}; logs in {Path(args.out) / 'submitit'}")
    except (ValueError, FileNotFoundError) as exc:
        print(f"freqlat-eval: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

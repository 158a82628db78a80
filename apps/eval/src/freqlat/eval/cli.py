"""``freqlat-eval``: measure tokenizers and write result tables.

Usage::

    freqlat-eval recon --tokenizer SPEC [SPEC ...] --num-images N [--data ROOT|embedded]
                       [--key value ...] [--launcher local|debug|local-submitit|slurm] ...

``freqlat-eval recon --help`` lists every option with its type, default and help: the fields of
:class:`~freqlat.eval.job.ReconEvalSettings` and of the :class:`~freqlat.core.LaunchOptions`
it runs with. A SPEC is what :func:`freqlat.tokenizers.load_tokenizer` resolves: a
save_pretrained directory, a freqlat-train run directory, an official preset (``PRESET`` or
``PRESET=PATH``) or ``random:PRESET``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from freqlat.core import (
    LaunchOptions,
    add_config_arguments,
    build_config,
    config_field,
    launch,
    setup_logging,
)
from freqlat.eval.job import ReconEvalJob, ReconEvalSettings


@dataclass
class ReconCommand:
    """Everything ``freqlat-eval recon`` takes: what to measure, and where to run."""

    settings: ReconEvalSettings = config_field(help="what to measure")
    launch: LaunchOptions = config_field(
        default_factory=lambda: LaunchOptions(timeout_min=4 * 60, job_name="freqlat-eval-recon"),
        help="where and how the evaluation runs",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="freqlat-eval", description="Evaluate tokenizers.")
    commands = parser.add_subparsers(dest="command", required=True)
    recon = commands.add_parser(
        "recon",
        help="the reconstruction table",
        description="Recon, Low, High, LPIPS, rFID, PSNR and SSIM of each tokenizer on the "
        "same images, written as CSV, JSON and markdown.",
    )
    add_config_arguments(recon, ReconCommand)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``freqlat-eval``; returns the exit code (2 on a bad command)."""
    args = vars(_parser().parse_args(argv))
    args.pop("command")
    setup_logging()
    try:
        command = build_config(ReconCommand, args)
        options = command.launch
        out = Path(command.settings.out_dir)
        result = launch(ReconEvalJob(command.settings), options, out / "submitit")
        if options.launcher == "debug":
            result.result()
        elif options.launcher != "local":
            print(f"submitted job {result.job_id}; logs in {out / 'submitit'}")
    except (ValueError, FileNotFoundError) as exc:
        print(f"freqlat-eval: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

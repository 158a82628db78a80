"""``freqlat-eval``: measure tokenizers and generators and write result tables.

Usage::

    freqlat-eval recon --tokenizer SPEC [SPEC ...] --num-images N [--data ROOT|embedded]
                       [--key value ...] [--launcher local|debug|local-submitit|slurm] ...
    freqlat-eval generate --generator SPEC [SPEC ...] --cfg-scale S [S ...]
                          [--tokenizer SPEC] [--reference REF.npz] [--key value ...] ...

``freqlat-eval recon --help`` and ``freqlat-eval generate --help`` list every option with its
type, default and help: the fields of :class:`~freqlat.eval.job.ReconEvalSettings` or
:class:`~freqlat.eval.generate_job.GenerateEvalSettings` and of the
:class:`~freqlat.core.LaunchOptions` they run with. A tokenizer SPEC is what
:func:`freqlat.tokenizers.load_tokenizer` resolves: a save_pretrained directory, a freqlat-train
run directory, an official preset (``PRESET`` or ``PRESET=PATH``) or ``random:PRESET``; a
generator SPEC is what :func:`freqlat.eval.generator_specs.load_generator` resolves.
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
from freqlat.eval.generate_job import GenerateEvalJob, GenerateEvalSettings
from freqlat.eval.job import ReconEvalJob, ReconEvalSettings


@dataclass
class ReconCommand:
    """Everything ``freqlat-eval recon`` takes: what to measure, and where to run."""

    settings: ReconEvalSettings = config_field(help="what to measure")
    launch: LaunchOptions = config_field(
        default_factory=lambda: LaunchOptions(timeout_min=4 * 60, job_name="freqlat-eval-recon"),
        help="where and how the evaluation runs",
    )


@dataclass
class GenerateCommand:
    """Everything ``freqlat-eval generate`` takes: what to sample and measure, where to run."""

    settings: GenerateEvalSettings = config_field(help="what to sample and measure")
    launch: LaunchOptions = config_field(
        default_factory=lambda: LaunchOptions(
            timeout_min=24 * 60, job_name="freqlat-eval-generate"
        ),
        help="where and how the evaluation runs",
    )


COMMANDS = {
    "recon": (ReconCommand, lambda command: ReconEvalJob(command.settings)),
    "generate": (
        GenerateCommand,
        lambda command: GenerateEvalJob(command.settings, command.launch.use_cuda),
    ),
}
"""Subcommand -> (its config class, the job built from a parsed config)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="freqlat-eval", description="Evaluate tokenizers and generators."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    recon = commands.add_parser(
        "recon",
        help="the reconstruction table",
        description="Recon, Low, High, LPIPS, rFID, PSNR and SSIM of each tokenizer on the "
        "same images, written as CSV, JSON and markdown.",
    )
    add_config_arguments(recon, ReconCommand)
    generate = commands.add_parser(
        "generate",
        help="the generation table",
        description="Sample each generator with and without guidance, write the samples as "
        "ADM sample batches, and measure FID, sFID, IS, precision, recall (ADM evaluator) and "
        "the high-frequency power ratio against a reference batch; written as CSV, JSON and "
        "markdown.",
    )
    add_config_arguments(generate, GenerateCommand)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``freqlat-eval``; returns the exit code (2 on a bad command)."""
    args = vars(_parser().parse_args(argv))
    command_class, make_job = COMMANDS[args.pop("command")]
    setup_logging()
    try:
        command = build_config(command_class, args)
        options = command.launch
        out = Path(command.settings.out_dir)
        result = launch(make_job(command), options, out / "submitit")
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

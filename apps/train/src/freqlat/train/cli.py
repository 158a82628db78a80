"""``freqlat-train``: resolve a run's config, write it, and run or submit the training job.

Usage::

    freqlat-train tokenizer --preset NAME [--data ROOT|embedded] [--key value ...]
                            [--launcher local|debug|local-submitit|slurm]

Every ``--key value`` pair names a field of :class:`~freqlat.train.config.TokenizerTrainConfig`
or of the :class:`~freqlat.core.LaunchOptions` it embeds (dashes and underscores are the same);
an unknown key or a value of the wrong type is an error. ``--help`` lists every key with its
type, default and help (``--preset NAME --help``: that preset's defaults); it answers before
torch is imported.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from freqlat.core.config import add_config_arguments, parse_overrides
from freqlat.train.config import TokenizerTrainConfig, preset_defaults, resolve_config, write_config

logger = logging.getLogger("freqlat.train")

COMMANDS = {"tokenizer": "train a tokenizer preset"}
"""The subcommands and what each does."""

_HELP = ("-h", "--help")


def help_parser(preset: str | None = None) -> argparse.ArgumentParser:
    """The parser whose ``--help`` lists every config key (with ``preset``'s defaults if given).

    The values themselves are parsed by :func:`freqlat.core.config.parse_overrides`, which the
    same keys and types drive.
    """
    parser = argparse.ArgumentParser(
        prog="freqlat-train",
        description="Train freqlat models in-process or as submitit/SLURM jobs.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    tokenizer = commands.add_parser(
        "tokenizer",
        help=COMMANDS["tokenizer"],
        description="Train a freqlat.tokenizers preset. Every key below can be given as "
        "--key value or --key=value (dashes or underscores); the defaults shown are the "
        f"preset's ({preset or 'a paper preset; -tiny presets have a CPU recipe'}).",
    )
    defaults = preset_defaults(preset or "<preset>")
    add_config_arguments(tokenizer, TokenizerTrainConfig, defaults=defaults, parse=False)
    return parser


def _wants_help(argv: Sequence[str]) -> bool:
    return not argv or argv[0] not in COMMANDS or any(token in _HELP for token in argv)


def _preset_named(argv: Sequence[str]) -> str | None:
    """The value of ``--preset`` in ``argv``, if it is given with a value."""
    for index, token in enumerate(argv):
        if token.startswith("--preset="):
            return token.partition("=")[2]
        if token == "--preset" and index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            return argv[index + 1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``freqlat-train``; returns the process exit code (2 on a bad command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if _wants_help(argv):
        help_parser(_preset_named(argv)).parse_args(argv)  # prints the usage or help and exits
    try:
        overrides = parse_overrides(argv[1:])
        if "preset" not in overrides:
            raise ValueError("--preset is required")
        config = resolve_config(overrides.pop("preset"), overrides)
    except (ValueError, FileNotFoundError) as exc:
        print(f"freqlat-train: error: {exc}", file=sys.stderr)
        return 2
    return _run(config)


def _run(config: TokenizerTrainConfig) -> int:
    from freqlat.core import detect_placement, launch, setup_logging
    from freqlat.train.job import TokenizerTrainingJob

    setup_logging()
    placement = detect_placement()
    if placement.rank == 0:
        try:
            path = write_config(config)
        except ValueError as exc:
            print(f"freqlat-train: error: {exc}", file=sys.stderr)
            return 2
        logger.info("config written to %s", path)
    job = TokenizerTrainingJob(config)
    options = config.launch_options()
    result: Any = launch(job, options, Path(config.run_dir) / "submitit")
    if options.launcher == "debug":
        result = result.result()
    elif options.launcher != "local":
        print(f"submitted job {result.job_id}; logs in {Path(config.run_dir) / 'submitit'}")
        return 0
    if placement.rank == 0:
        print(f"finished at step {result['step']}; run directory {result['run_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

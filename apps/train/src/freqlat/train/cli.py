"""``freqlat-train``: resolve a run's config, write it, and run or submit the training job.

Usage::

    freqlat-train tokenizer --preset NAME [--data ROOT|embedded] [--key value ...]
                            [--launcher local|debug|slurm]

Every ``--key value`` pair names a field of :class:`~freqlat.train.config.TokenizerTrainConfig`
(dashes and underscores are the same); an unknown key or a value of the wrong type is an error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from freqlat.core import detect_placement, launch, setup_logging
from freqlat.tokenizers import list_tokenizers
from freqlat.train.config import resolve_config, write_config
from freqlat.train.job import TokenizerTrainingJob

logger = logging.getLogger("freqlat.train")


def parse_overrides(tokens: Sequence[str]) -> dict[str, str]:
    """Turn ``--key value`` / ``--key=value`` tokens into ``{key: value}`` (keys snake_case)."""
    overrides: dict[str, str] = {}
    items = list(tokens)
    while items:
        token = items.pop(0)
        if not token.startswith("--") or len(token) == 2:
            raise ValueError(f"expected --key value, got {token!r}")
        key, eq, value = token[2:].partition("=")
        if not eq:
            if not items or items[0].startswith("--"):
                raise ValueError(f"--{key} needs a value")
            value = items.pop(0)
        key = key.replace("-", "_")
        if key in overrides:
            raise ValueError(f"--{key} is given twice")
        overrides[key] = value
    return overrides


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="freqlat-train",
        description="Train freqlat models in-process or as submitit/SLURM jobs.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    tokenizer = commands.add_parser(
        "tokenizer",
        help="train a tokenizer preset",
        description="Any other --key value pair overrides a field of the training config.",
    )
    tokenizer.add_argument("--preset", required=True, help=f"one of {list_tokenizers()}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``freqlat-train``; returns the process exit code (2 on a bad command)."""
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    try:
        config = resolve_config(args.preset, parse_overrides(rest))
    except (ValueError, FileNotFoundError) as exc:
        print(f"freqlat-train: error: {exc}", file=sys.stderr)
        return 2
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

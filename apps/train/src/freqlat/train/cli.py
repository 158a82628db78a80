"""``freqlat-train``: resolve a run's config, write it, and run or submit the job.

Usage::

    freqlat-train tokenizer --preset NAME [--data ROOT|embedded] [--key value ...]
                            [--launcher local|debug|local-submitit|slurm]
    freqlat-train cache-latents --tokenizer SPEC --data ROOT --out DIR [--key value ...]
    freqlat-train generator --preset NAME --latents DIR [--key value ...]

Every ``--key value`` pair names a field of the command's config
(:class:`~freqlat.train.config.TokenizerTrainConfig`,
:class:`~freqlat.train.cache_config.CacheLatentsConfig`,
:class:`~freqlat.train.generator_config.GeneratorTrainConfig`) or of the
:class:`~freqlat.core.LaunchOptions` they embed (dashes and underscores are the same); an
unknown key or a value of the wrong type is an error. ``--help`` lists every key with its type,
default and help (``--preset NAME --help``: that preset's defaults); it answers before torch is
imported (except for a ``var-*`` preset, whose recipe the generators package holds).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freqlat.core.config import add_config_arguments, parse_overrides
from freqlat.train.cache_config import CacheLatentsConfig, resolve_cache_config
from freqlat.train.config import TokenizerTrainConfig, preset_defaults, resolve_config, write_config
from freqlat.train.generator_config import (
    GeneratorTrainConfig,
    generator_defaults,
    resolve_generator_config,
)

logger = logging.getLogger("freqlat.train")


@dataclass(frozen=True)
class Command:
    """One subcommand: its config class, recipe defaults, resolution and job."""

    help: str
    config_class: type
    defaults: Callable[[str], dict[str, Any]] | None
    resolve: Callable[[dict[str, Any]], Any]
    job: str
    directory: str


def _with_preset(resolve: Callable[[str, dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    def resolve_overrides(overrides: dict[str, Any]) -> Any:
        if "preset" not in overrides:
            raise ValueError("--preset is required")
        return resolve(overrides.pop("preset"), overrides)

    return resolve_overrides


COMMANDS: dict[str, Command] = {
    "tokenizer": Command(
        "train a tokenizer preset",
        TokenizerTrainConfig,
        preset_defaults,
        _with_preset(resolve_config),
        "TokenizerTrainingJob",
        "run_dir",
    ),
    "cache-latents": Command(
        "encode the training images (and their mirror images) with a tokenizer into a cache",
        CacheLatentsConfig,
        None,
        resolve_cache_config,
        "CacheLatentsJob",
        "out",
    ),
    "generator": Command(
        "train a generator preset on a latent cache",
        GeneratorTrainConfig,
        generator_defaults,
        _with_preset(resolve_generator_config),
        "GeneratorTrainingJob",
        "run_dir",
    ),
}
"""The subcommands."""

_HELP = ("-h", "--help")


def help_parser(command: str | None = None, preset: str | None = None) -> argparse.ArgumentParser:
    """The parser whose ``--help`` lists every config key of each command (with ``preset``'s
    defaults for ``command``, if given).

    The values themselves are parsed by :func:`freqlat.core.config.parse_overrides`, which the
    same keys and types drive.
    """
    parser = argparse.ArgumentParser(
        prog="freqlat-train",
        description="Train freqlat models and cache latents, in-process or as submitit/SLURM jobs.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, spec in COMMANDS.items():
        recipe = "the defaults shown are the config's"
        defaults: dict[str, Any] = {}
        if spec.defaults is not None:
            named = preset if name == command else None
            shown = named or "a paper preset; -tiny presets have a CPU recipe"
            recipe = f"the defaults shown are the preset's ({shown})"
            defaults = spec.defaults(named or "<preset>")
        sub = commands.add_parser(
            name,
            help=spec.help,
            description=f"{spec.help[0].upper()}{spec.help[1:]}. Every key below can be given "
            f"as --key value or --key=value (dashes or underscores); {recipe}.",
        )
        add_config_arguments(sub, spec.config_class, defaults=defaults, parse=False)
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
        command = argv[0] if argv and argv[0] in COMMANDS else None
        help_parser(command, _preset_named(argv)).parse_args(argv)  # prints help and exits
    command = COMMANDS[argv[0]]
    try:
        config = command.resolve(parse_overrides(argv[1:]))
    except (ValueError, FileNotFoundError) as exc:
        print(f"freqlat-train: error: {exc}", file=sys.stderr)
        return 2
    return _run(config, command)


def _run(config: Any, command: Command) -> int:
    from freqlat.core import detect_placement, launch, setup_logging, write_run_config
    from freqlat.train import job as jobs

    setup_logging()
    placement = detect_placement()
    directory = Path(getattr(config, command.directory))
    if placement.rank == 0:
        try:
            if isinstance(config, TokenizerTrainConfig):
                path = write_config(config)
            else:
                path = write_run_config(directory, config)
        except ValueError as exc:
            print(f"freqlat-train: error: {exc}", file=sys.stderr)
            return 2
        logger.info("config written to %s", path)
    job = getattr(jobs, command.job)(config)
    options = config.launch_options()
    result: Any = launch(job, options, directory / "submitit")
    if options.launcher == "debug":
        result = result.result()
    elif options.launcher != "local":
        print(f"submitted job {result.job_id}; logs in {directory / 'submitit'}")
        return 0
    if placement.rank == 0:
        if isinstance(config, CacheLatentsConfig):
            print(f"cache of {result['count']} images in {result['out']}")
        else:
            print(f"finished at step {result['step']}; run directory {result['run_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

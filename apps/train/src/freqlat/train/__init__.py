"""freqlat.train: the freqlat-train app (tokenizer training runs, in-process or through submitit)."""

from freqlat.train.cli import main
from freqlat.train.components import build_loss, build_model, build_training_loss, lr_factor
from freqlat.train.config import (
    TokenizerTrainConfig,
    parse_value,
    preset_defaults,
    read_config,
    resolve_config,
    write_config,
)
from freqlat.train.job import TokenizerTrainingJob
from freqlat.train.loop import train_tokenizer

__all__ = [
    "TokenizerTrainConfig",
    "TokenizerTrainingJob",
    "build_loss",
    "build_model",
    "build_training_loss",
    "lr_factor",
    "main",
    "parse_value",
    "preset_defaults",
    "read_config",
    "resolve_config",
    "train_tokenizer",
    "write_config",
]

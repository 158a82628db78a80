"""Typed configs: overrides, typed values, embedded launch options, config.json and --help."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass

import pytest

from freqlat.core.config import (
    add_config_arguments,
    build_config,
    config_field,
    config_from_dict,
    config_keys,
    config_to_dict,
    parse_overrides,
    parse_value,
    read_config_json,
    typed_values,
    write_config_json,
)
from freqlat.core.launch_options import LaunchOptions


@dataclass
class RunConfig:
    """A small config in the shape of the training configs."""

    name: str = config_field(help="the run's name")
    steps: int = config_field(10, help="steps to train")
    lr: float = config_field(1e-4, help="learning rate")
    use_ema: bool | None = config_field(None, help="keep an EMA (none: per model)")
    extra: dict = config_field(default_factory=dict, help="model overrides")
    mode: str = config_field("a", help="a mode", choices=("a", "b"))
    launch: LaunchOptions = config_field(
        default_factory=lambda: LaunchOptions(timeout_min=30), help="launch settings"
    )


@dataclass
class ListConfig:
    """A config with a list key (several values on the command line)."""

    items: list[str] = config_field(help="one or more items", flag="--item", metavar="ITEM")
    count: int = config_field(1, help="a count")
    scales: list[float] = config_field(default_factory=lambda: [1.0], help="float values")


def test_overrides_parse_both_spellings_and_reject_repeats():
    assert parse_overrides(["--batch-size", "4", "--run_dir=x"]) == {
        "batch_size": "4",
        "run_dir": "x",
    }
    with pytest.raises(ValueError, match="given twice"):
        parse_overrides(["--lr", "1", "--lr", "2"])
    with pytest.raises(ValueError, match="needs a value"):
        parse_overrides(["--lr"])
    with pytest.raises(ValueError, match="expected --key value"):
        parse_overrides(["lr", "1"])


def test_typed_values_none_bool_and_json_are_parsed():
    values = typed_values(
        RunConfig,
        {"use_ema": "false", "extra": '{"ch": 8}', "lr": "2e-4", "steps": 3, "mem_gb": "none"},
    )
    assert values == {"use_ema": False, "extra": {"ch": 8}, "lr": 2e-4, "steps": 3, "mem_gb": None}
    assert parse_value(RunConfig, "use_ema", "null") is None
    assert parse_value(ListConfig, "items", ["a", "b"]) == ["a", "b"]


def test_list_keys_convert_each_value_to_the_element_type():
    assert parse_value(ListConfig, "scales", ["1", "2.5"]) == [1.0, 2.5]
    assert typed_values(ListConfig, {"scales": [1, 2.5]}) == {"scales": [1.0, 2.5]}
    with pytest.raises(
        ValueError, match=r"config key 'scales' expects float list, got \['1', 'x'\]"
    ):
        parse_value(ListConfig, "scales", ["1", "x"])
    with pytest.raises(ValueError, match="config key 'scales' expects float list"):
        typed_values(ListConfig, {"scales": ["1"]})
    with pytest.raises(ValueError, match="config key 'items' expects str list"):
        typed_values(ListConfig, {"items": [1]})
    parser = argparse.ArgumentParser(prog="x")
    add_config_arguments(parser, ListConfig)
    args = vars(parser.parse_args(["--item", "a", "--scales", "1", "10"]))
    assert args["scales"] == [1.0, 10.0] and args["items"] == ["a"]
    assert "--scales FLOAT [FLOAT ...]" in parser.format_help()


def test_wrong_types_and_unknown_keys_are_one_line_errors():
    with pytest.raises(ValueError, match="config key 'lr' expects float, got 'high'"):
        parse_value(RunConfig, "lr", "high")
    with pytest.raises(ValueError, match="config key 'steps' expects int"):
        parse_value(RunConfig, "steps", "2.5")
    with pytest.raises(ValueError, match="config key 'extra' expects a JSON object"):
        parse_value(RunConfig, "extra", "[1]")
    with pytest.raises(ValueError, match="config key 'steps' expects int, got True"):
        typed_values(RunConfig, {"steps": True})
    with pytest.raises(ValueError, match=r"unknown config key 'learning_rate'; valid keys: .*'lr'"):
        parse_value(RunConfig, "learning_rate", "1")
    with pytest.raises(ValueError, match=r"missing config keys \['name'\]"):
        build_config(RunConfig, {})


def test_embedded_dataclass_keys_are_flat_and_keep_their_own_defaults_and_checks():
    keys = config_keys(RunConfig)
    assert list(keys)[:6] == ["name", "steps", "lr", "use_ema", "extra", "mode"]
    assert keys["nodes"].path == ("launch", "nodes") and keys["timeout_min"].default == 30
    config = build_config(RunConfig, {"name": "x", "nodes": 2, "tasks_per_node": 3})
    assert config.launch == LaunchOptions(nodes=2, tasks_per_node=3, timeout_min=30)
    with pytest.raises(ValueError, match="unknown launcher"):
        build_config(RunConfig, {"name": "x", "launcher": "kubernetes"})
    flat = config_to_dict(config)
    assert flat["nodes"] == 2 and "launch" not in flat
    assert config_from_dict(RunConfig, json.loads(json.dumps(flat))) == config


def test_config_json_is_written_once_and_a_different_config_is_refused(tmp_path):
    path = tmp_path / "run" / "config.json"
    config = build_config(RunConfig, {"name": "x", "lr": 1})
    write_config_json(path, config)
    assert read_config_json(path, RunConfig) == config
    assert isinstance(read_config_json(path, RunConfig).lr, float)
    launch_keys = set(config_keys(LaunchOptions))
    moved = build_config(RunConfig, {"name": "x", "lr": 1, "nodes": 4})
    write_config_json(path, moved, may_differ=launch_keys)  # launch keys may change
    with pytest.raises(ValueError, match=r"holds a different config \(keys \['steps'\]\)"):
        changed = build_config(RunConfig, {"name": "x", "lr": 1, "steps": 11})
        write_config_json(path, changed, may_differ=launch_keys)
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        read_config_json(tmp_path / "config.json", RunConfig)


def test_help_lists_every_key_with_type_default_and_help():
    parser = argparse.ArgumentParser(prog="x")
    add_config_arguments(parser, RunConfig, defaults={"steps": 99}, parse=False)
    text = " ".join(parser.format_help().split())
    squashed = "".join(text.split())  # argparse wraps lines at spaces and hyphens
    for key in config_keys(RunConfig).values():
        assert key.option in text and "".join(key.help.split()) in squashed
    assert "--steps INT to train (int, default: 99)" in text.replace("steps to", "to")
    assert "(str, required)" in text and "(float or none" not in text
    assert "(bool or none, default: none)" in text and "one of a, b" in text


def test_argparse_options_parse_typed_values_choices_and_lists():
    parser = argparse.ArgumentParser(prog="x")
    add_config_arguments(parser, ListConfig)
    args = parser.parse_args(["--item", "a", "b", "--count", "3"])
    assert (args.items, args.count) == (["a", "b"], 3)
    choices = argparse.ArgumentParser(prog="y")
    add_config_arguments(choices, RunConfig)
    assert choices.parse_args(["--name", "n", "--use-ema", "yes"]).use_ema is True
    with pytest.raises(SystemExit):
        choices.parse_args(["--name", "n", "--mode", "c"])
    with pytest.raises(SystemExit):
        choices.parse_args(["--name", "n", "--steps", "many"])


def test_config_module_and_launch_options_import_without_torch():
    code = (
        "import sys; import freqlat.core.config, freqlat.core.launch_options; "
        "from freqlat.core import LaunchOptions, config_keys, lr_factor; "
        "config_keys(LaunchOptions); lr_factor(0, steps=1, warmup=0, schedule='constant', "
        "min_ratio=0.0); assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

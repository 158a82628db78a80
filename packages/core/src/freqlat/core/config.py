"""Typed run configs: one dataclass gives the command line, its ``--help`` and ``config.json``.

A config is a dataclass whose fields are declared with :func:`config_field`: a type hint, a
default (or none: the key is required) and a one-line help. A field whose type is itself a
dataclass (e.g. :class:`~freqlat.core.LaunchOptions`) is *embedded*: its fields are keys of the
outer config, on the command line and in ``config.json``, so a training config reuses the
launch options instead of declaring them again.

Supported value types: ``str``, ``int``, ``float``, ``bool``, ``dict`` (a JSON object),
``list[str]``, ``list[int]`` and ``list[float]`` (several values), each optionally ``| None``. One conversion serves every source:
:func:`parse_value` for command-line text, :func:`check_value` for Python values and JSON, so a
value from ``--key value``, from ``resolve_config(..., {"key": value})`` or from a saved
``config.json`` is checked the same way, and a bad one is one line naming the key.

Why not a dataclass-to-CLI library (tyro, simple-parsing): the training command's defaults
depend on the preset it names (``--preset X`` decides the recipe the other keys override), the
same typed conversion has to check Python values and ``config.json`` when a run resumes, and the
tests pin one-line errors (``unknown config key ...``, ``config key 'lr' expects float``). The
parsing itself is small (:func:`parse_overrides`); the help comes from argparse
(:func:`add_config_arguments`), which the eval command also parses with. This module imports
neither torch nor the rest of freqlat, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CONFIG_FILE = "config.json"
"""Name of the resolved config inside a run directory."""

_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "1", "yes", "on")
_FALSE_WORDS = ("false", "0", "no", "off")


def config_field(
    default: Any = MISSING,
    *,
    help: str,
    default_factory: Any = MISSING,
    choices: Sequence[str] | None = None,
    flag: str | None = None,
    metavar: str | None = None,
) -> Any:
    """A dataclass field with its command-line help; no default makes the key required.

    ``choices`` lists the accepted values (shown in ``--help``; argparse enforces them),
    ``flag`` replaces the ``--key-name`` option string, ``metavar`` the value's placeholder.
    """
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if flag is not None:
        metadata["flag"] = flag
    if metavar is not None:
        metadata["metavar"] = metavar
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


@dataclass(frozen=True)
class ConfigKey:
    """One key of a (flattened) config: where it lives, its type, default and help."""

    name: str
    path: tuple[str, ...]
    hint: Any
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    flag: str | None = None
    metavar: str | None = None

    @property
    def required(self) -> bool:
        """True when the key has no default."""
        return self.default is MISSING

    @property
    def option(self) -> str:
        """The command-line option string, e.g. ``--run-dir``."""
        return self.flag or "--" + self.name.replace("_", "-")


def _is_embedded(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _field_default(item: dataclasses.Field) -> Any:
    if item.default is not MISSING:
        return item.default
    if item.default_factory is not MISSING:
        return item.default_factory()
    return MISSING


@functools.cache
def config_keys(cls: type) -> dict[str, ConfigKey]:
    """Every key of config class ``cls``, embedded dataclasses flattened, in field order.

    An embedded field's default (an instance) supplies its keys' defaults, so a config can embed
    ``LaunchOptions`` with, say, another default timeout.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    keys: dict[str, ConfigKey] = {}
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        if _is_embedded(hint):
            default = _field_default(item)
            for key in config_keys(hint).values():
                inner = key.default if default is MISSING else getattr(default, key.name)
                nested = dataclasses.replace(key, path=(item.name, *key.path), default=inner)
                _add_key(keys, nested, cls)
            continue
        meta = item.metadata
        key = ConfigKey(
            name=item.name,
            path=(item.name,),
            hint=hint,
            default=_field_default(item),
            help=meta.get("help", ""),
            choices=meta.get("choices"),
            flag=meta.get("flag"),
            metavar=meta.get("metavar"),
        )
        _add_key(keys, key, cls)
    return keys


def _add_key(keys: dict[str, ConfigKey], key: ConfigKey, cls: type) -> None:
    if key.name in keys:
        raise TypeError(f"{cls.__name__} has the key {key.name!r} twice (an embedded clash)")
    keys[key.name] = key


def _allows_none(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _base_type(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return hint


def _origin(hint: Any) -> Any:
    base = _base_type(hint)
    return typing.get_origin(base) or base


def _item_type(hint: Any) -> type:
    """The element type of a list key (``str``, ``int`` or ``float``)."""
    args = typing.get_args(_base_type(hint))
    return args[0] if args else str


def type_name(hint: Any) -> str:
    """How errors and ``--help`` name a key's type: ``int``, ``float list``, ``a JSON object``."""
    origin = _origin(hint)
    if origin is list:
        name = f"{_item_type(hint).__name__} list"
    else:
        name = {dict: "a JSON object"}.get(origin, getattr(origin, "__name__", ""))
    return f"{name or hint} or none" if _allows_none(hint) else name or str(hint)


def _key(cls: type, name: str) -> ConfigKey:
    keys = config_keys(cls)
    if name not in keys:
        raise ValueError(f"unknown config key {name!r}; valid keys: {sorted(keys)}")
    return keys[name]


def parse_value(cls: type, key: str, text: str | Sequence[str]) -> Any:
    """Convert the command-line text of ``key`` to its type (ValueError if it does not fit).

    ``none`` / ``null`` give None for optional keys; booleans take true/false/1/0/yes/no/on/off;
    dict keys take JSON objects; list keys take a sequence of strings, each converted to the
    list's element type.
    """
    hint = _key(cls, key).hint
    origin = _origin(hint)
    if origin is list:
        items = [text] if isinstance(text, str) else list(text)
        item_type = _item_type(hint)
        try:
            return [item_type(item) for item in items]
        except ValueError as exc:
            raise ValueError(
                f"config key {key!r} expects {type_name(hint)}, got {items!r}"
            ) from exc
    if not isinstance(text, str):
        raise ValueError(f"config key {key!r} takes one value, got {list(text)}")
    if _allows_none(hint) and text.strip().lower() in _NONE_WORDS:
        return None
    try:
        if origin is bool:
            lowered = text.strip().lower()
            if lowered in _TRUE_WORDS:
                return True
            if lowered in _FALSE_WORDS:
                return False
            raise ValueError(text)
        if origin is dict:
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError(text)
            return value
        if origin in (int, float, str):
            return origin(text)
    except ValueError as exc:
        raise ValueError(f"config key {key!r} expects {type_name(hint)}, got {text!r}") from exc
    raise ValueError(f"config key {key!r} has an unsupported type {hint}")


def check_value(cls: type, key: str, value: Any) -> Any:
    """Check a Python value (e.g. read from config.json) against ``key``'s type; ints pass as floats."""
    hint = _key(cls, key).hint
    if value is None and _allows_none(hint):
        return None
    origin = _origin(hint)
    if origin is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    ok = isinstance(value, origin) and not (origin is int and isinstance(value, bool))
    if ok and origin is list:
        item_type = _item_type(hint)
        if item_type is float:
            value = [
                float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value
            ]
        ok = all(isinstance(item, item_type) and not isinstance(item, bool) for item in value)
    if not ok:
        raise ValueError(f"config key {key!r} expects {type_name(hint)}, got {value!r}")
    return value


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


def typed_values(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with strings parsed as command-line text and other values checked, per key."""
    return {
        key: parse_value(cls, key, value)
        if isinstance(value, str)
        else check_value(cls, key, value)
        for key, value in values.items()
    }


def build_config(cls: type[T], values: Mapping[str, Any]) -> T:
    """Build ``cls`` from flat, typed ``values`` (unset keys take their defaults).

    Embedded dataclasses are built from their own keys over their default instance, so their
    ``__post_init__`` checks run. A missing required key is a ValueError naming it.
    """
    keys = config_keys(cls)
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; valid keys: {sorted(keys)}")
    missing = [k.name for k in keys.values() if k.required and k.name not in values]
    if missing:
        raise ValueError(f"missing config keys {missing}")
    return _build(cls, values)


def _build(cls: type[T], values: Mapping[str, Any]) -> T:
    hints = typing.get_type_hints(cls)
    arguments: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        if _is_embedded(hint):
            own = {k: values[k] for k in config_keys(hint) if k in values}
            default = _field_default(item)
            if default is MISSING:
                arguments[item.name] = _build(hint, own)
            else:
                arguments[item.name] = dataclasses.replace(default, **own)
        elif item.name in values:
            arguments[item.name] = values[item.name]
    return cls(**arguments)


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as a flat dict of JSON-ready values (embedded dataclasses flattened)."""
    flat = {}
    for key in config_keys(type(config)).values():
        value: Any = config
        for name in key.path:
            value = getattr(value, name)
        flat[key.name] = json.loads(json.dumps(value))
    return flat


def config_from_dict(cls: type[T], values: Mapping[str, Any]) -> T:
    """Rebuild a config from :func:`config_to_dict` output, every value's type checked."""
    keys = config_keys(cls)
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; valid keys: {sorted(keys)}")
    return build_config(cls, {k: check_value(cls, k, v) for k, v in values.items()})


def write_config_json(path: str | Path, config: Any, *, may_differ: Collection[str] = ()) -> Path:
    """Write ``config`` as JSON to ``path``, or check that the file there holds the same config.

    A run directory belongs to one config: restarting with other settings would silently mix two
    runs, so a mismatch outside ``may_differ`` (e.g. the launch keys) is a ValueError naming
    the keys that differ. The file is written to a temporary name and renamed into place.
    """
    path = Path(path)
    current = config_to_dict(config)
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        differ = sorted(
            k
            for k in set(saved) | set(current)
            if saved.get(k) != current.get(k) and k not in may_differ
        )
        if differ:
            raise ValueError(
                f"{path} holds a different config (keys {differ}); use a new --run_dir "
                "or the same settings to resume"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temp.replace(path)
    return path


def read_config_json(path: str | Path, cls: type[T]) -> T:
    """Read a config written by :func:`write_config_json` (types checked)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} in {path.parent}")
    return config_from_dict(cls, json.loads(path.read_text(encoding="utf-8")))


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


def _metavar(hint: Any) -> str:
    origin = _origin(hint)
    if origin is list:
        return _item_type(hint).__name__.upper()
    return {dict: "JSON"}.get(origin, getattr(origin, "__name__", "VALUE").upper())


def _help_text(key: ConfigKey, default: Any) -> str:
    shown = "required" if default is MISSING else f"default: {_shown(default)}"
    choices = f"; one of {', '.join(key.choices)}" if key.choices else ""
    return f"{key.help} ({type_name(key.hint)}, {shown}{choices})".replace("%", "%%")


def add_config_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    defaults: Mapping[str, Any] | None = None,
    parse: bool = True,
) -> None:
    """Add one option per key of ``cls`` to ``parser``, with type, default and help.

    ``defaults`` replaces keys' defaults in the help (e.g. a preset's recipe). With ``parse``
    the options parse into typed values (``argparse`` enforces ``choices`` and required keys;
    list keys take one or more values). Without it they are for ``--help`` only: their values
    are left to :func:`parse_overrides`.
    """
    defaults = dict(defaults or {})
    for key in config_keys(cls).values():
        default = defaults.get(key.name, key.default)
        kwargs: dict[str, Any] = {
            "dest": key.name,
            "help": _help_text(key, default),
            "metavar": key.metavar or _metavar(key.hint),
        }
        if parse:
            kwargs["required"] = default is MISSING
            if default is not MISSING:
                kwargs["default"] = default
            if key.choices:
                kwargs["choices"] = key.choices
            if _origin(key.hint) is list:
                kwargs["nargs"] = "+"
            kwargs["type"] = _argparse_type(cls, key.name)
        parser.add_argument(key.option, **kwargs)


def _argparse_type(cls: type, name: str) -> Any:
    """argparse's converter of one value of key ``name`` (one element of a list key)."""
    hint = config_keys(cls)[name].hint
    is_list = _origin(hint) is list

    def convert(text: str) -> Any:
        try:
            value = parse_value(cls, name, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
        return value[0] if is_list else value

    convert.__name__ = _item_type(hint).__name__ if is_list else type_name(hint)
    return convert


def check_fields(
    config: Any,
    *,
    positive: Sequence[str] = (),
    non_negative: Sequence[str] = (),
    unit_interval: Sequence[str] = (),
) -> None:
    """Validate a config's numbers and choices (for ``__post_init__``); ValueError naming the key.

    ``positive`` keys must be at least 1, ``non_negative`` ones at least 0 and ``unit_interval``
    ones within [0, 1] (None passes); every key declared with ``choices`` must hold one of them.
    """
    for name in positive:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    for name in non_negative:
        value = getattr(config, name)
        if value is not None and value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
    for name in unit_interval:
        value = getattr(config, name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    for key in config_keys(type(config)).values():
        if key.choices is None or len(key.path) != 1:
            continue
        value = getattr(config, key.name)
        if value is not None and value not in key.choices:
            raise ValueError(f"{key.name} must be one of {key.choices}, got {value!r}")

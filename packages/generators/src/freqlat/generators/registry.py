"""Named presets of every generator family, and the released checkpoints that load into them.

Each family module registers its presets with :func:`register_presets` and its importer of
released weights with :func:`register_official` when it is imported; ``freqlat.generators``
imports every family, so the registry is complete once the package is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from freqlat.generators.base import Generator
from freqlat.tokenizers.configs import apply_overrides

_PRESETS: dict[str, tuple[type[Generator], Any]] = {}
OfficialImporter = Callable[..., Generator]
_IMPORTERS: dict[str, OfficialImporter] = {}


def register_presets(model_cls: type[Generator], presets: Mapping[str, Any]) -> None:
    """Add ``presets`` (name -> config of ``model_cls``); a name may be registered once."""
    for name, config in presets.items():
        if name in _PRESETS:
            raise ValueError(f"generator preset {name!r} is registered twice")
        _PRESETS[name] = (model_cls, config)


def register_official(presets: Iterable[str], importer: OfficialImporter) -> None:
    """Route :func:`from_official` for ``presets`` to ``importer(name, path, **components)``."""
    for name in presets:
        _lookup(name)
        _IMPORTERS[name] = importer


def list_generators() -> list[str]:
    """Names of every preset, sorted."""
    return sorted(_PRESETS)


def _lookup(name: str) -> tuple[type[Generator], Any]:
    if name not in _PRESETS:
        raise ValueError(f"unknown generator preset {name!r}; choose one of {list_generators()}")
    return _PRESETS[name]


def preset_config(name: str, **overrides: Any) -> Any:
    """The config of preset ``name`` with ``overrides`` applied (see :func:`create_generator`)."""
    return apply_overrides(_lookup(name)[1], overrides)


def create_generator(name: str, *, tokenizer: Any = None, **overrides: Any) -> Generator:
    """Build preset ``name`` with fresh weights.

    ``overrides`` replace fields of the preset's config (``in_channels=64``); unknown names or
    keys raise ValueError listing the valid ones. ``tokenizer`` is for the models that need one
    (VAR builds its next-scale inputs with the tokenizer's quantiser).
    """
    model_cls, _ = _lookup(name)
    components = {} if tokenizer is None else {"tokenizer": tokenizer}
    model = model_cls.build(preset_config(name, **overrides), **components)
    model.preset = name
    return model


def from_official(name: str, path: str | Path | None = None, *, tokenizer: Any = None) -> Generator:
    """Preset ``name`` carrying released upstream weights, read from ``path`` or the cache.

    ``path`` is the file or its folder; without it the file is looked for in
    ``$FREQLAT_CACHE/generators`` (``~/.cache/freqlat/generators``).
    """
    _lookup(name)
    if name not in _IMPORTERS:
        raise ValueError(
            f"no released checkpoint loads into preset {name!r}; presets with one: "
            f"{sorted(_IMPORTERS)}"
        )
    components = {} if tokenizer is None else {"tokenizer": tokenizer}
    return _IMPORTERS[name](name, path, **components)

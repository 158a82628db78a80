"""The common generator base: a typed config, an architecture registry, save and load."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from freqlat.tokenizers.configs import config_from_dict
from freqlat.tokenizers.pretrained import (
    load_pretrained_weights,
    read_pretrained_meta,
    write_pretrained,
)

_ARCHITECTURES: dict[str, type[Generator]] = {}


class Generator(nn.Module):
    """Base class of every latent generator.

    Subclasses set ``architecture`` (the name stored in config.json) and ``config_class`` (a
    frozen dataclass). A model that needs more than its config to be built (VAR needs its
    tokenizer's quantiser) overrides :meth:`build`; the keyword arguments it takes are the
    *components* that ``create_generator``, ``from_pretrained`` and ``from_official`` pass on.
    """

    architecture: ClassVar[str] = ""
    config_class: ClassVar[type] = object

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.architecture:
            _ARCHITECTURES[cls.architecture] = cls

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.preset: str | None = None

    @classmethod
    def build(cls, config: Any, **components: Any) -> Generator:
        """A model of ``config`` with fresh weights; ValueError for components it does not take."""
        if components:
            raise ValueError(f"{cls.__name__} takes no components, got {sorted(components)}")
        return cls(config)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` (architecture, preset, config)."""
        return write_pretrained(self, directory, self.architecture, self.preset, self.config)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, map_location: str = "cpu", **components: Any
    ) -> Generator:
        """Load a directory written by :meth:`save_pretrained`, checking every key strictly.

        Called on a subclass, a checkpoint of another architecture raises ValueError.
        """
        path = Path(directory)
        meta = read_pretrained_meta(path)
        architecture = meta.get("architecture")
        if architecture not in _ARCHITECTURES:
            raise ValueError(
                f"{path / 'config.json'} names architecture {architecture!r}; known: "
                f"{sorted(_ARCHITECTURES)}"
            )
        model_cls = _ARCHITECTURES[architecture]
        if cls is not Generator and not issubclass(model_cls, cls):
            raise ValueError(
                f"{path} holds a {architecture!r} checkpoint, not a {cls.architecture!r} one"
            )
        model = model_cls.build(
            config_from_dict(model_cls.config_class, meta["config"]), **components
        )
        model.preset = meta.get("preset")
        load_pretrained_weights(model, path, map_location)
        return model

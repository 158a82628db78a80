"""Typed configs of every tokenizer and their JSON round trip."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from freqlat.tokenizers.backbone import ConvBackboneConfig


@dataclass(frozen=True)
class KLAutoencoderConfig:
    """A KL autoencoder (LDM AutoencoderKL): backbone plus 1x1 moment/post-quant convs.

    The latent has ``backbone.z_channels`` channels; images have ``backbone.in_channels``.
    """

    backbone: ConvBackboneConfig = field(default_factory=ConvBackboneConfig)


@dataclass(frozen=True)
class MultiScaleVQConfig:
    """VAR's multi-scale residual VQ-VAE.

    ``patch_sizes`` are the token-map sides from coarse to fine; the last must equal the latent
    side (image size / downsample). ``phi_count`` shared phi convs are picked per scale by the
    nearest of ``phi_count`` evenly spaced ticks; ``phi_ratio`` mixes phi(h) = r*conv(h) + (1-r)*h.
    """

    backbone: ConvBackboneConfig = field(default_factory=ConvBackboneConfig)
    vocab_size: int = 4096
    patch_sizes: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    beta: float = 0.25
    phi_count: int = 4
    phi_ratio: float = 0.5
    quant_conv_kernel: int = 3


@dataclass(frozen=True)
class FrequencyAwareConfig:
    """FA-VAE: a one-level Haar split into a low (LL) and a high (LH, HL, HH) KL autoencoder.

    ``low`` sees LL / band_scale bicubically upsampled to the image size (3 channels); ``high``
    sees the detail bands / band_scale as 3 * 3 colour-major channels at half size. The joint
    latent is [high, low] concatenated on channels.
    """

    low: KLAutoencoderConfig = field(default_factory=KLAutoencoderConfig)
    high: KLAutoencoderConfig = field(default_factory=KLAutoencoderConfig)
    band_scale: float = 2.0


TokenizerConfig = KLAutoencoderConfig | MultiScaleVQConfig | FrequencyAwareConfig


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a (nested) config dataclass; tuples become lists."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild config dataclass ``cls`` from :func:`config_to_dict` output, checking every key."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} expects a dict, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys: {sorted(names)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = config_from_dict(hint, value)
        elif typing.get_origin(hint) is tuple:
            values[name] = tuple(value)
        else:
            values[name] = value
    return cls(**values)


def apply_overrides(config: Any, overrides: dict[str, Any]) -> Any:
    """Return ``config`` with ``overrides`` applied.

    A key may name a field of the config itself or of its ``backbone`` (so ``ch=64`` works on a
    KL or VQ config). A nested config may be given as a dict of its own overrides. Unknown keys
    raise ValueError listing the valid ones.
    """
    own = {f.name for f in dataclasses.fields(config)}
    backbone = getattr(config, "backbone", None)
    inner = {f.name for f in dataclasses.fields(backbone)} if backbone is not None else set()
    top: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in own:
            current = getattr(config, key)
            if dataclasses.is_dataclass(current) and isinstance(value, dict):
                value = apply_overrides(current, value)
            elif isinstance(value, list):
                value = tuple(value)
            top[key] = value
        elif key in inner:
            nested[key] = tuple(value) if isinstance(value, list) else value
        else:
            raise ValueError(
                f"unknown config key {key!r} for {type(config).__name__}; "
                f"valid keys: {sorted(own | inner)}"
            )
    if nested:
        top["backbone"] = dataclasses.replace(top.get("backbone", backbone), **nested)
    return dataclasses.replace(config, **top)

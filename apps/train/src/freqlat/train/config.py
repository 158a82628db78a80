"""The one typed config of a tokenizer training run: preset defaults, CLI overrides, config.json.

:func:`resolve_config` starts from :func:`preset_defaults` (the paper recipe for a paper preset,
a small CPU recipe for a ``-tiny`` preset), applies ``key=value`` overrides with their types
checked against :class:`TokenizerTrainConfig`, and validates the result. The resolved config is
written to ``<run_dir>/config.json``; a restarted run must resolve to the same config.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from freqlat.core import LaunchOptions
from freqlat.tokenizers import list_tokenizers, preset_config

CONFIG_FILE = "config.json"
"""Name of the resolved config inside the run directory."""

PRECISIONS = ("fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "cosine")
EMBEDDED = "embedded"


@dataclass
class TokenizerTrainConfig:
    """Every knob of a tokenizer training run, resolved before anything starts.

    Model: ``preset`` (a ``freqlat.tokenizers`` preset) and ``model_overrides`` (passed to
    ``create_tokenizer``). Data: ``data`` is ``"embedded"``, an ImageNet-layout root or any image
    folder; ``batch_size`` is per process. Loss: the LDM autoencoder loss of the tokenizers
    package; ``perceptual_weight > 0`` needs the LPIPS VGG weights, ``use_vf`` the DINOv2
    weights (``foundation_weights`` or the default cache); both are never replaced by random
    weights. ``high_disc_layers`` is the FA-VAE high branch's PatchGAN depth. Schedule: a linear
    warm-up then ``lr_schedule``. Launch: the fields of :class:`freqlat.core.LaunchOptions`
    (``tasks_per_node`` None: one task per GPU, at least one).
    """

    preset: str
    run_dir: str
    data: str = EMBEDDED
    image_size: int = 256
    model_overrides: dict[str, Any] = field(default_factory=dict)
    skip_bad_images: bool = False
    num_workers: int = 4
    seed: int = 0
    steps: int = 100_000
    batch_size: int = 16
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float = 0.0
    precision: str = "fp32"
    ema_decay: float = 0.9999
    find_unused_parameters: bool = False
    perceptual_weight: float = 1.0
    lpips_trunk: str | None = None
    use_vf: bool | None = None
    foundation_weights: str | None = None
    vf_weight: float = 0.1
    kl_weight: float = 1e-6
    codebook_weight: float = 1.0
    disc_start: int = 5001
    disc_weight: float = 0.5
    disc_factor: float = 1.0
    disc_base_channels: int = 64
    disc_layers: int = 3
    high_disc_layers: int = 3
    disc_lr: float | None = None
    band_weight: float = 0.0
    mask_weight: float = 0.0
    log_every: int = 50
    grid_every: int = 1000
    grid_images: int = 8
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    launcher: str = "local"
    nodes: int = 1
    gpus_per_node: int = 1
    tasks_per_node: int | None = None
    cpus_per_task: int = 8
    mem_gb: int | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    timeout_min: int = 24 * 60
    max_num_timeout: int = 10
    signal_delay_s: int = 120
    slurm_additional_parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preset not in list_tokenizers():
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {list_tokenizers()}")
        preset_config(self.preset, **self.model_overrides)  # unknown model keys raise here
        positive = ("image_size", "steps", "batch_size", "log_every", "grid_every")
        positive += ("checkpoint_every", "keep_checkpoints", "grid_images")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("num_workers", "warmup_steps", "grad_clip", "perceptual_weight", "lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not 0.0 <= self.ema_decay <= 1.0 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("ema_decay and min_lr_ratio must lie in [0, 1]")
        self.launch_options()  # validates the launcher fields

    def launch_options(self) -> LaunchOptions:
        """The :class:`freqlat.core.LaunchOptions` these settings stand for."""
        return LaunchOptions(
            launcher=self.launcher,
            nodes=self.nodes,
            gpus_per_node=self.gpus_per_node,
            tasks_per_node=self.tasks_per_node,
            cpus_per_task=self.cpus_per_task,
            mem_gb=self.mem_gb,
            partition=self.partition,
            account=self.account,
            qos=self.qos,
            timeout_min=self.timeout_min,
            job_name=f"freqlat-train-{self.preset}",
            max_num_timeout=self.max_num_timeout,
            signal_delay_s=self.signal_delay_s,
            slurm_additional_parameters=dict(self.slurm_additional_parameters),
        )

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-ready values."""
        return asdict(self)


def preset_defaults(preset: str) -> dict[str, Any]:
    """Defaults for ``preset``: the paper recipe, or a CPU recipe for ``-tiny`` presets.

    The tiny recipe (32 px, 64 px for the VQ model whose input size is fixed by its patch sizes)
    trains without LPIPS and VF loss, since their pretrained networks cannot be downloaded here;
    ``config.json`` records that. The FA-VAE high branch sees half-size bands, so its PatchGAN
    is one layer shallower in the tiny recipe (a 3-layer one needs 24 px).
    """
    if not preset.endswith("-tiny"):
        return {}
    return {
        "image_size": 64 if preset.startswith("ms-vq-vae") else 32,
        "steps": 200,
        "batch_size": 8,
        "lr": 2e-4,
        "num_workers": 0,
        "ema_decay": 0.99,
        "perceptual_weight": 0.0,
        "use_vf": False,
        "disc_start": 100,
        "disc_base_channels": 16,
        "high_disc_layers": 2,
        "log_every": 10,
        "grid_every": 100,
        "checkpoint_every": 100,
        "grid_images": 8,
    }


def _type_hints() -> dict[str, Any]:
    return typing.get_type_hints(TokenizerTrainConfig)


def _allows_none(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _base_type(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return hint


def parse_value(key: str, text: str) -> Any:
    """Convert the command-line text of ``key`` to the field's type (ValueError if it does not fit).

    ``none`` / ``null`` give None for optional fields; booleans take true/false/1/0/yes/no;
    dict fields take JSON objects.
    """
    hints = _type_hints()
    if key not in hints:
        raise ValueError(f"unknown config key {key!r}; valid keys: {sorted(hints)}")
    hint = hints[key]
    if _allows_none(hint) and text.strip().lower() in ("none", "null"):
        return None
    base = _base_type(hint)
    origin = typing.get_origin(base) or base
    try:
        if origin is bool:
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
        if origin is dict:
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError(text)
            return value
        if origin is int:
            return int(text)
        if origin is float:
            return float(text)
        if origin is str:
            return text
    except ValueError as exc:
        raise ValueError(f"config key {key!r} expects {_type_name(hint)}, got {text!r}") from exc
    raise ValueError(f"config key {key!r} has an unsupported type {hint}")


def _type_name(hint: Any) -> str:
    base = _base_type(hint)
    name = getattr(typing.get_origin(base) or base, "__name__", str(base))
    name = "a JSON object" if name == "dict" else name
    return f"{name} or none" if _allows_none(hint) else name


def check_value(key: str, value: Any) -> Any:
    """Check a Python value (e.g. read from config.json) against the field's type."""
    hints = _type_hints()
    if key not in hints:
        raise ValueError(f"unknown config key {key!r}; valid keys: {sorted(hints)}")
    hint = hints[key]
    if value is None and _allows_none(hint):
        return None
    base = typing.get_origin(_base_type(hint)) or _base_type(hint)
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    ok = isinstance(value, base) and not (base is int and isinstance(value, bool))
    if not ok:
        raise ValueError(f"config key {key!r} expects {_type_name(hint)}, got {value!r}")
    return value


def resolve_config(preset: str, overrides: dict[str, Any]) -> TokenizerTrainConfig:
    """Preset defaults, then ``overrides`` (typed values or command-line strings), validated.

    ``run_dir`` defaults to ``runs/<preset>``, so the same command resumes the same run.
    """
    if preset not in list_tokenizers():
        raise ValueError(f"unknown preset {preset!r}; choose one of {list_tokenizers()}")
    values: dict[str, Any] = {"preset": preset, "run_dir": str(Path("runs") / preset)}
    values.update(preset_defaults(preset))
    for key, value in overrides.items():
        if key == "preset":
            raise ValueError("give the preset with --preset, not as an override")
        values[key] = parse_value(key, value) if isinstance(value, str) else check_value(key, value)
    config = TokenizerTrainConfig(**values)
    if config.data != EMBEDDED and not Path(config.data).is_dir():
        raise FileNotFoundError(
            f"data root {config.data} does not exist or is not a directory "
            f"(use --data {EMBEDDED} for the built-in photographs)"
        )
    return config


def config_from_dict(values: dict[str, Any]) -> TokenizerTrainConfig:
    """Rebuild a config from :meth:`TokenizerTrainConfig.to_dict` output (types checked)."""
    known = {f.name for f in fields(TokenizerTrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; valid keys: {sorted(known)}")
    return TokenizerTrainConfig(**{k: check_value(k, v) for k, v in values.items()})


def write_config(config: TokenizerTrainConfig) -> Path:
    """Write ``config.json`` into the run directory, or check that the one there matches.

    A run directory belongs to one config: restarting with different settings would silently
    mix two runs, so a mismatch is a ValueError naming the keys that differ.
    """
    run_dir = Path(config.run_dir)
    path = run_dir / CONFIG_FILE
    current = json.loads(json.dumps(config.to_dict()))
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        launch_keys = {f.name for f in fields(LaunchOptions)}
        differ = sorted(
            k
            for k in set(saved) | set(current)
            if saved.get(k) != current.get(k) and k not in launch_keys
        )
        if differ:
            raise ValueError(
                f"{path} holds a different config (keys {differ}); use a new --run_dir "
                "or the same settings to resume"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{CONFIG_FILE}.tmp")
    temp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temp.replace(path)
    return path


def read_config(run_dir: str | Path) -> TokenizerTrainConfig:
    """Read ``<run_dir>/config.json``."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {run_dir}")
    return config_from_dict(json.loads(path.read_text(encoding="utf-8")))

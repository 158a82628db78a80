"""Importing LightningDiT checkpoints: the container layouts, strict keys, the fixed tables,
missing files, and the released latent statistics."""

import json
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from freqlat.generators import create_generator, from_official, load_official_latent_stats, registry
from freqlat.generators.lightningdit_official import _locate_release

SMALL = dict(input_size=8, in_channels=6, hidden_size=32, depth=2, num_heads=2, num_classes=1000)


def _state(seed: int, **overrides) -> dict[str, torch.Tensor]:
    """A state dict with upstream's key names (ours are upstream's, see the parity test)."""
    torch.manual_seed(seed)
    model = create_generator("lightningdit-tiny", **{**SMALL, **overrides})
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name != "pos_embed":
                param.add_(torch.randn(param.shape))
    return model.state_dict()


def _point_tiny_at(monkeypatch, config: dict) -> None:
    """Make preset lightningdit-tiny build ``config`` for the rest of the test."""
    presets = dict(registry._PRESETS)
    model_cls, base = presets["lightningdit-tiny"]
    presets["lightningdit-tiny"] = (model_cls, replace(base, **config))
    monkeypatch.setattr(registry, "_PRESETS", presets)


@pytest.fixture
def tiny(monkeypatch):
    """Point preset lightningdit-tiny at the small config used here."""
    _point_tiny_at(monkeypatch, SMALL)


def _assert_loaded(model, state):
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("layout", ["ema", "model", "train.py", "bare", "ddp"])
def test_every_container_layout_loads_and_ema_is_preferred(tiny, tmp_path, layout):
    ema, raw = _state(0), _state(1)
    containers = {
        "ema": {"ema": ema},
        "model": {"model": ema},
        "train.py": {"model": raw, "ema": ema, "opt": {"state": {}, "param_groups": []},
                     "config": {"model": {"model_type": "LightningDiT-XL/1"}}},
        "bare": ema,
        "ddp": {"model": {f"module.{k}": v for k, v in ema.items()}},
    }  # fmt: skip
    path = tmp_path / "checkpoint.pt"
    torch.save(containers[layout], path)
    model = from_official("lightningdit-tiny", path)
    _assert_loaded(model, ema)
    assert not model.training


def test_the_official_codes_own_state_dict_loads(tmp_path, monkeypatch):
    # The parity fixture holds state dicts written by upstream's LightningDiT itself.
    with safe_open(
        str(Path(__file__).parent / "fixtures" / "lightningdit_upstream.safetensors"), "pt"
    ) as f:
        config = json.loads(f.metadata()["configs"])["release"]
        upstream = {
            k.removeprefix("release/state/"): f.get_tensor(k)
            for k in f.keys()  # noqa: SIM118 (safe_open has no iterator)
            if k.startswith("release/state/")
        }
    _point_tiny_at(monkeypatch, config)
    torch.save({"model": upstream, "ema": upstream, "opt": {}, "config": {}}, tmp_path / "up.pt")
    _assert_loaded(from_official("lightningdit-tiny", tmp_path / "up.pt"), upstream)


def test_latent_channels_follow_the_checkpoint(tiny, tmp_path):
    torch.save({"ema": _state(0, in_channels=64)}, tmp_path / "fa.pt")
    assert from_official("lightningdit-tiny", tmp_path / "fa.pt").config.in_channels == 64


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.update(extra=torch.zeros(1)), r"unexpected keys \['extra'\]"),
        (lambda s: s.pop("blocks.1.mlp.w3.bias"), r"missing keys \['blocks.1.mlp.w3.bias'\]"),
        (
            lambda s: s.update({"final_layer.linear.bias": torch.zeros(5)}),
            r"final_layer.linear.bias: checkpoint \(5,\) vs model \(6,\)",
        ),
        (lambda s: s["pos_embed"].mul_(2), "pos_embed differs from the table"),
        (lambda s: s["feat_rope.freqs_cos"].add_(0.1), "feat_rope.freqs_cos differs"),
    ],
)
def test_a_wrong_checkpoint_is_a_clear_error(tiny, tmp_path, edit, message):
    state = _state(0)
    edit(state)
    torch.save({"ema": state}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=message):
        from_official("lightningdit-tiny", tmp_path / "bad.pt")


def test_non_tensor_containers_are_refused(tiny, tmp_path):
    torch.save({"opt": {"lr": 1.0}, "step": 3}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="no 'ema' or 'model' state dict"):
        from_official("lightningdit-tiny", tmp_path / "odd.pt")


@dataclass
class _Payload:
    value: int = 1


def test_files_are_read_with_weights_only(tiny, tmp_path):
    torch.save({"ema": _state(0), "extra": _Payload()}, tmp_path / "pickled.pt")
    with pytest.raises(pickle.UnpicklingError):
        from_official("lightningdit-tiny", tmp_path / "pickled.pt")


def test_a_missing_release_names_the_files_urls_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FREQLAT_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        from_official("lightningdit-xl-1")
    text = str(error.value)
    for part in (
        "lightningdit-xl-imagenet256-64ep.pt",
        "lightningdit-xl-imagenet256-800ep.pt",
        "https://huggingface.co/hustvl/lightningdit-xl-imagenet256-64ep/resolve/main/",
        "sha256 not published",
        str(tmp_path / "generators"),
    ):
        assert part in text
    with pytest.raises(FileNotFoundError, match="upstream releases only XL/1"):
        from_official("lightningdit-b-1")


def test_a_release_folder_is_searched_for_either_release(tmp_path):
    (tmp_path / "lightningdit-xl-imagenet256-800ep.pt").touch()
    found = _locate_release("lightningdit-xl-1", tmp_path)
    assert found == tmp_path / "lightningdit-xl-imagenet256-800ep.pt"
    (tmp_path / "lightningdit-xl-imagenet256-64ep.pt").touch()
    assert _locate_release("lightningdit-xl-1", tmp_path).name.endswith("64ep.pt")


def test_released_latent_statistics_load(tmp_path, monkeypatch):
    mean, std = torch.randn(1, 32, 1, 1), torch.rand(1, 32, 1, 1) + 0.5
    torch.save({"mean": mean, "std": std}, tmp_path / "latents_stats.pt")
    loaded_mean, loaded_std = load_official_latent_stats(tmp_path)
    assert torch.equal(loaded_mean, mean) and torch.equal(loaded_std, std)
    torch.save({"mean": mean[0], "std": std[0]}, tmp_path / "flat.pt")
    with pytest.raises(ValueError, match="must both be 1 x C x 1 x 1"):
        load_official_latent_stats(tmp_path / "flat.pt")
    torch.save({"mean": mean, "std": -std}, tmp_path / "neg.pt")
    with pytest.raises(ValueError, match="non-positive"):
        load_official_latent_stats(tmp_path / "neg.pt")
    monkeypatch.setenv("FREQLAT_CACHE", str(tmp_path / "empty"))
    with pytest.raises(
        FileNotFoundError, match=r"vavae-imagenet256-f16d32-dinov2/resolve/main/latents_stats\.pt"
    ):
        load_official_latent_stats()

"""The generator base and registry: presets, overrides, components, strict save/load."""

from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from freqlat.generators import Generator, create_generator, from_pretrained, preset_config, registry


@dataclass(frozen=True)
class _LinearConfig:
    channels: int = 4
    hidden: int = 8


class _LinearGenerator(Generator):
    architecture = "test-linear"
    config_class = _LinearConfig

    def __init__(self, config: _LinearConfig) -> None:
        super().__init__(config)
        self.inner = nn.Sequential(
            nn.Linear(config.channels, config.hidden), nn.Linear(config.hidden, config.channels)
        )


@pytest.fixture
def presets(monkeypatch):
    monkeypatch.setattr(registry, "_PRESETS", dict(registry._PRESETS))
    monkeypatch.setattr(registry, "_IMPORTERS", dict(registry._IMPORTERS))
    registry.register_presets(_LinearGenerator, {"test-linear": _LinearConfig()})


def test_overrides_reach_the_config_and_unknown_keys_are_named(presets):
    assert preset_config("test-linear", hidden=16).hidden == 16
    model = create_generator("test-linear", channels=3)
    assert model.preset == "test-linear" and model.inner[0].in_features == 3
    with pytest.raises(ValueError, match=r"unknown config key 'width'.*\['channels', 'hidden'\]"):
        create_generator("test-linear", width=3)
    with pytest.raises(ValueError, match=r"unknown generator preset 'nope'"):
        create_generator("nope")


def test_a_model_without_components_refuses_a_tokenizer(presets):
    with pytest.raises(ValueError, match="takes no components"):
        create_generator("test-linear", tokenizer=object())


def test_a_preset_name_is_registered_once(presets):
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_presets(_LinearGenerator, {"test-linear": _LinearConfig()})


def test_from_official_names_the_presets_that_have_a_release(presets):
    with pytest.raises(ValueError, match="no released checkpoint loads into preset 'test-linear'"):
        registry.from_official("test-linear")


def test_save_and_load_round_trip_strictly(presets, tmp_path):
    torch.manual_seed(0)
    model = create_generator("test-linear", hidden=5)
    model.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)
    assert type(loaded) is _LinearGenerator and loaded.config == model.config
    assert loaded.preset == "test-linear"
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    weights = load_file(str(tmp_path / "model.safetensors"))
    weights.pop("inner.1.bias")
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"missing keys \['inner.1.bias'\]"):
        from_pretrained(tmp_path)

"""Shared fixtures of the generator tests: one intra-op thread, a tiny tokenizer and VAR, the LDM
fixture script's seeded weights, and building presets on the meta device."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from freqlat.generators import create_generator
from freqlat.tokenizers import create_tokenizer


@pytest.fixture(scope="module", autouse=True)
def single_intra_op_thread():
    """Run the tiny models on one thread (the shared CPU is faster that way), then restore."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """``ms-vq-vae-tiny`` with random weights (256 codes of 32 channels, scales 1, 2, 3, 4)."""
    torch.manual_seed(0)
    return create_tokenizer("ms-vq-vae-tiny").eval()


@pytest.fixture
def tiny_var(tiny_tokenizer):
    """``var-tiny`` on the tiny tokenizer, random weights, eval mode.

    Upstream initialises the AdaLN gates and the head near zero; the weights are spread here so
    that every block and the class condition move the logits.
    """
    torch.manual_seed(0)
    model = create_generator("var-tiny", tokenizer=tiny_tokenizer)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim >= 2 and "scale_mul" not in name:
                param.normal_(0.0, param.shape[-1] ** -0.5)
    return model.eval()


@pytest.fixture(scope="session")
def ldm_reference():
    """``make_ldm_fixture.py`` as a module: the seeded weights, cases and our side's outputs."""
    name = "freqlat_generators_make_ldm_fixture"
    if name not in sys.modules:
        path = Path(__file__).resolve().parent / "make_ldm_fixture.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def on_meta(monkeypatch):
    """Build generator presets on the meta device (shapes only, no memory, no compute).

    nn.Embedding's normal_ init is skipped: on meta it runs through a decomposition whose first
    use imports sympy, tens of seconds on a machine without bytecode caches.
    """
    from freqlat.generators import create_generator

    monkeypatch.setattr(torch.nn.Embedding, "reset_parameters", lambda self: None)

    def build(preset, **overrides):
        with torch.device("meta"):
            return create_generator(preset, **overrides)

    return build

"""Shared helpers: one torch thread, and the fixture script's seeded weights for LDM tests."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def single_intra_op_thread():
    """Run this package's small models on one thread, restoring the setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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

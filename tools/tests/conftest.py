"""Shared fixtures for the tools' tests: load a script as a module, small JPEGs, empty caches."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

TOOLS_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the test machine's cores are shared, and oversubscription is slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def empty_weight_caches(tmp_path, monkeypatch):
    """Point every weights cache at an empty folder, so no test reads or writes the real ones."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("FREQLAT_CACHE", str(tmp_path / "freqlat-cache"))
    monkeypatch.setenv("FREQLAT_WEIGHTS", str(tmp_path / "freqlat-weights"))


@pytest.fixture(scope="session")
def load_tool():
    """Import ``tools/<name>.py`` as a module (tools/ is not a package), once per session."""
    loaded = {}

    def load(name: str):
        if name not in loaded:
            spec = importlib.util.spec_from_file_location(f"tools_{name}", TOOLS_DIR / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # dataclasses look their module up here
            spec.loader.exec_module(module)
            loaded[name] = module
        return loaded[name]

    return load


@pytest.fixture
def write_jpegs():
    """Write ``count`` small random JPEGs into ``folder``; returns their paths."""

    def write(folder: Path, count: int, size: int = 40, prefix: str = "img") -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(len(str(folder)) + count)
        paths = []
        for index in range(count):
            pixels = rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)
            path = folder / f"{prefix}_{index:04d}.JPEG"
            Image.fromarray(pixels).save(path, quality=90)
            paths.append(path)
        return paths

    return write

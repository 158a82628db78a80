"""Shared fixtures: one torch thread, an empty weights cache, tiny tokenizers saved to disk."""

import pytest
import torch

from freqlat.tokenizers import create_tokenizer


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the test machine's cores are shared, and oversubscription is slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def empty_weight_caches(tmp_path, monkeypatch):
    """Point every weights cache at an empty folder, so no test depends on what is installed."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("FREQLAT_CACHE", str(tmp_path / "freqlat-cache"))


@pytest.fixture
def saved_tokenizer(tmp_path):
    """Save a randomly initialised preset with save_pretrained; returns (directory, model)."""

    def save(preset: str, seed: int = 0):
        torch.manual_seed(seed)
        model = create_tokenizer(preset).eval()
        directory = tmp_path / "models" / f"{preset}-{seed}"
        model.save_pretrained(directory)
        return directory, model

    return save

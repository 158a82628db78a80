"""Shared fixtures for the benchmark scripts' tests (the scripts import as modules: pytest puts
benchmarks/ on sys.path)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the test machine's cores are shared, and oversubscription is slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

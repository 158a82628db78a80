"""Shared fixtures of the generators' tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the models here are tiny, and on a shared, loaded machine two threads
    spin against each other (the training test takes ~3 s on one thread, over a minute on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

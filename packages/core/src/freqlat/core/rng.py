"""Capture and restore every global random number generator, as tensors and plain numbers.

The captured state only holds tensors, ints, floats and dicts, so it round-trips through
``torch.save`` / ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture_rng_state() -> dict[str, Any]:
    """The state of Python's, numpy's legacy, torch's CPU and (if present) the current CUDA RNG."""
    version, mt_words, gauss_next = random.getstate()
    # numpy's legacy global RNG is what third-party code draws from when it uses np.random.
    _, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "python": {
            "version": int(version),
            "state": torch.tensor(mt_words, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back a state captured by :func:`capture_rng_state`.

    The CUDA part is restored only where CUDA is available (it is skipped on a CPU machine).
    """
    python = state["python"]
    random.setstate(
        (python["version"], tuple(int(w) for w in python["state"].tolist()), python["gauss_next"])
    )
    np_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])

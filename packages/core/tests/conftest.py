"""Shared fixtures: small image folders written with PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> Path:
    """Write a random image of ``size`` (W, H) in ``mode`` to ``path`` and return the path."""
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(array).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def make_image():
    """The :func:`write_image` helper, for tests that build their own files."""
    return write_image


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    """root/<class>/*: two classes, three images each, mixed sizes and formats."""
    root = tmp_path / "classes"
    for c, name in enumerate(["n01", "n02"]):
        for i in range(3):
            ext = ".JPEG" if i % 2 == 0 else ".png"
            write_image(root / name / f"img{i}{ext}", (40 + 8 * i, 32 + 4 * c), seed=10 * c + i)
    (root / "n01" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def imagenet_root(tmp_path: Path) -> Path:
    """A miniature ImageNet layout: train/<wnid>/*.JPEG and val/<wnid>/*.JPEG."""
    root = tmp_path / "imagenet"
    for split, count in (("train", 3), ("val", 1)):
        for c, wnid in enumerate(["n01440764", "n01443537"]):
            for i in range(count):
                write_image(root / split / wnid / f"{wnid}_{i}.JPEG", (48, 40), seed=c * 7 + i)
    return root

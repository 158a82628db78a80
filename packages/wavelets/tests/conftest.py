"""Shared fixtures: real colour photographs that ship inside scikit-image."""

import numpy as np
import pytest
import torch
from skimage import data


@pytest.fixture(scope="session")
def photographs() -> torch.Tensor:
    """Astronaut, coffee and chelsea, centre-cropped to 256 x 256, as float64 in [-1, 1]."""
    crops = []
    for image in (data.astronaut(), data.coffee(), data.chelsea()):
        h, w = image.shape[:2]
        top, left = (h - 256) // 2, (w - 256) // 2
        crops.append(image[top : top + 256, left : left + 256])
    batch = np.stack(crops).astype(np.float64) / 127.5 - 1.0
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()

"""Shared fixtures: small real photographs from scikit-image's bundled data."""

import numpy as np
import pytest
import torch
from skimage import data


@pytest.fixture(autouse=True)
def empty_digest_cache(tmp_path, monkeypatch):
    """Keep the weights-digest cache of every test in its own folder, never the user's."""
    monkeypatch.setenv("FREQLAT_CACHE", str(tmp_path / "freqlat-cache"))


@pytest.fixture(scope="session")
def photos() -> torch.Tensor:
    """Four real 64 x 64 RGB crops in [-1, 1], shape 4 x 3 x 64 x 64 (float32)."""
    crops = []
    for image in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket()):
        h, w = image.shape[:2]
        top, left = (h - 64) // 2, (w - 64) // 2
        crops.append(image[top : top + 64, left : left + 64])
    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    return batch / 127.5 - 1.0


@pytest.fixture(scope="session")
def degraded(photos: torch.Tensor) -> torch.Tensor:
    """A plausible reconstruction of ``photos``: blurred plus a little noise, clipped to [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    blurred = torch.nn.functional.avg_pool2d(
        photos, 3, stride=1, padding=1, count_include_pad=False
    )
    return (blurred + 0.05 * torch.randn(photos.shape, generator=g)).clamp(-1, 1)


def _calibrate_batchnorm(model: torch.nn.Module, images: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``images`` (keeps activations O(1))."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one pass sets the batch statistics
    torch.nn.Module.train(model, True)
    with torch.no_grad():
        model(images)
    model.eval()


@pytest.fixture(scope="session")
def uint8_photos(photos: torch.Tensor) -> torch.Tensor:
    """The photos as uint8, 4 x 3 x 64 x 64."""
    return ((photos + 1) * 127.5).round().to(torch.uint8)


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory, uint8_photos: torch.Tensor):
    """A random FID-Inception state dict with calibrated BatchNorm, saved under torch-fidelity's name.

    Loaders refuse it (it is not the published file) unless a test pins its sha256.
    """
    from freqlat.metrics import InceptionFeatures

    torch.manual_seed(0)
    model = InceptionFeatures(pretrained=False)
    _calibrate_batchnorm(model, uint8_photos)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 0.1
    path = tmp_path_factory.mktemp("inception") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def inception_extractor(inception_weights):
    """InceptionFeatures (TF1 resize) holding ``inception_weights``, shared by the tests."""
    from freqlat.metrics import InceptionFeatures
    from freqlat.metrics.weights import load_state_dict

    model = InceptionFeatures(pretrained=False)
    model.load_state_dict(load_state_dict(inception_weights))
    return model


@pytest.fixture
def pin_sha256(monkeypatch):
    """Make a random-weights file "the right one": pin a spec's expected sha256 to its digest.

    ``pin_sha256(owner, key, path)`` replaces ``owner[key]`` (a dict of specs) or the module
    attribute ``owner.key`` for the rest of the test.
    """
    from dataclasses import replace

    from freqlat.metrics.weights import file_sha256

    def pin(owner, key: str, path) -> None:
        if isinstance(owner, dict):
            monkeypatch.setitem(owner, key, replace(owner[key], sha256=file_sha256(path)))
        else:
            monkeypatch.setattr(owner, key, replace(getattr(owner, key), sha256=file_sha256(path)))

    return pin

"""No metric or loss uses a weights file that is not the published one; digests are cached.

Random weights stand in for the real files (none can be downloaded here): saved under the real
file names they must be refused; a "right" file is made by pinning the expected sha256 to the
file's own digest.
"""

import json
import os
from dataclasses import replace

import pytest
import torch

from freqlat.metrics import LPIPS, InceptionFeatures, WeightsVerificationError
from freqlat.metrics import inception as inception_module
from freqlat.metrics import weights as weights_module
from freqlat.metrics.perceptual import TRUNK_WEIGHTS, build_trunk
from freqlat.metrics.weights import (
    WeightsFile,
    cached_sha256,
    file_sha256,
    hash_cache_path,
    verify_weights,
)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache: ``$TORCH_HOME/hub/checkpoints``."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    folder = tmp_path / "torch-home" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="module")
def random_vgg_state():
    """torchvision VGG16 ``features.*`` tensors with random values (the real file's layout)."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in build_trunk("vgg").state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    return {f"features.{k}": torch.randn(shape, generator=generator) for k, shape in shapes.items()}


def _assert_names_file_hashes_and_source(message: str, path, expected: str, url: str) -> None:
    assert str(path) in message and "failed verification" in message
    assert file_sha256(path) in message and expected in message
    assert url in message
    assert "\n" not in message


def test_random_vgg16_weights_under_torchvision_name_are_refused_by_lpips_metric_and_loss(
    hub, random_vgg_state
):
    path = hub / "vgg16-397923af.pth"
    torch.save(random_vgg_state, path)
    spec = TRUNK_WEIGHTS["vgg"]
    for build in (
        lambda: LPIPS("vgg"),  # the metric
        lambda: LPIPS("vgg", check_range=False),  # the training loss
        lambda: LPIPS("vgg", trunk_path=path),  # an explicit path is checked too
    ):
        with pytest.raises(WeightsVerificationError) as error:
            build()
        _assert_names_file_hashes_and_source(str(error.value), path, "397923af", spec.url)


def test_a_right_vgg16_file_passes(hub, random_vgg_state, monkeypatch):
    path = hub / "vgg16-397923af.pth"
    torch.save(random_vgg_state, path)
    # the "right" file: expect the prefix this file's digest has
    pinned = replace(TRUNK_WEIGHTS["vgg"], sha256_prefix=file_sha256(path)[:8])
    monkeypatch.setitem(TRUNK_WEIGHTS, "vgg", pinned)
    metric = LPIPS("vgg")
    for key, value in random_vgg_state.items():
        assert torch.equal(metric.features.state_dict()[key.removeprefix("features.")], value)


def test_lpips_linear_layers_other_than_the_wheel_are_refused(tmp_path):
    path = tmp_path / "vgg-linear.pth"
    torch.save(
        {
            f"lin{i}.model.1.weight": torch.ones(1, c, 1, 1)
            for i, c in enumerate((64, 128, 256, 512, 512))
        },
        path,
    )
    metric = LPIPS("vgg", pretrained=False)
    with pytest.raises(WeightsVerificationError, match="linear layers"):
        metric.load_linear_layers(path)


def test_random_inception_weights_under_the_fid_names_are_refused(hub, inception_weights):
    spec = inception_module.INCEPTION_WEIGHTS
    for name in spec.file_names:
        (hub / name).write_bytes(inception_weights.read_bytes())
        with pytest.raises(WeightsVerificationError) as error:
            InceptionFeatures()
        _assert_names_file_hashes_and_source(
            str(error.value), hub / name, spec.sha256, "github.com"
        )
        (hub / name).unlink()
    with pytest.raises(WeightsVerificationError, match="failed verification"):
        InceptionFeatures(weights_path=inception_weights, resize="pytorch-fid")
    with pytest.raises(WeightsVerificationError, match="failed verification"):
        InceptionFeatures(pretrained=False).load_weights(inception_weights)


def test_a_right_inception_file_passes(hub, inception_weights, monkeypatch):
    pinned = replace(inception_module.INCEPTION_WEIGHTS, sha256=file_sha256(inception_weights))
    monkeypatch.setattr(inception_module, "INCEPTION_WEIGHTS", pinned)
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(inception_weights.read_bytes())
    assert InceptionFeatures().fc.weight.abs().sum() > 0


def test_the_published_fid_inception_digest_carries_the_prefix_of_its_file_names():
    spec = inception_module.INCEPTION_WEIGHTS
    assert all(name.endswith(f"-{spec.sha256[:8]}.pth") for name in spec.file_names)
    assert spec.sha256.startswith(spec.sha256_prefix)


def test_the_digest_is_cached_and_recomputed_when_the_file_changes(tmp_path, monkeypatch):
    calls = []

    def counting_sha256(path):
        calls.append(path)
        return file_sha256(path)

    monkeypatch.setattr(weights_module, "file_sha256", counting_sha256)
    path = tmp_path / "weights.pth"
    path.write_bytes(b"first version")
    spec = WeightsFile("test weights", ("weights.pth",), "https://example.invalid/w.pth")
    first = replace(spec, sha256=file_sha256(path))
    assert verify_weights(first, path) == first.sha256
    assert verify_weights(first, path) == first.sha256
    assert len(calls) == 1  # the second start reads the cache
    assert hash_cache_path() == tmp_path / "freqlat-cache" / "weights-sha256.json"
    assert str(path.resolve()) in json.loads(hash_cache_path().read_text())

    path.write_bytes(b"other content!")  # same size, new mtime
    with pytest.raises(WeightsVerificationError, match="failed verification"):
        verify_weights(first, path)
    assert len(calls) == 2
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched only
    cached_sha256(path)
    assert len(calls) == 3


def test_a_damaged_digest_cache_is_rebuilt(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"payload")
    hash_cache_path().parent.mkdir(parents=True)
    hash_cache_path().write_text("{not json")
    assert cached_sha256(path) == file_sha256(path)
    assert json.loads(hash_cache_path().read_text())[str(path.resolve())]["sha256"]


def test_a_file_without_a_published_checksum_is_accepted_with_its_digest_in_a_warning(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"payload")
    spec = WeightsFile("unpublished weights", ("weights.pth",), "https://example.invalid/w.pth")
    with pytest.warns(UserWarning, match=file_sha256(path)):
        verify_weights(spec, path)

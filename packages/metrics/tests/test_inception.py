"""Pins InceptionFeatures to torch-fidelity's and pytorch-fid's Inception with identical weights."""

import pytest
import pytorch_fid.inception
import torch
import torch.nn.functional as F
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from freqlat.metrics import InceptionFeatures
from freqlat.metrics import inception as inception_module
from freqlat.metrics.inception import INCEPTION_WEIGHTS, resize_bilinear_tf1, to_uint8
from freqlat.metrics.weights import load_state_dict


def _resized(uint8_photos: torch.Tensor, size: int) -> torch.Tensor:
    x = F.interpolate(
        uint8_photos[:2].float(), size=(size, size), mode="bilinear", align_corners=False
    )
    return x.round().clamp(0, 255).to(torch.uint8)


def test_tf1_resize_matches_torch_fidelity_bit_for_bit(uint8_photos):
    x = uint8_photos[:2].float()
    for size in (299, 37):
        expected = interpolate_bilinear_2d_like_tensorflow1x(
            x, size=(size, size), align_corners=False
        )
        assert torch.equal(resize_bilinear_tf1(x, size), expected)


def test_inception_matches_torch_fidelity_with_identical_weights(
    inception_weights, inception_extractor, uint8_photos
):
    ours = inception_extractor
    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat",
        ["2048", "logits_unbiased"],
        feature_extractor_weights_path=str(inception_weights),
    )
    captured = {}
    reference.Mixed_6d.branch1x1.register_forward_hook(
        lambda module, inputs, output: captured.update(branch=output.clone())
    )
    for size in (299, 256):  # 256 goes through the TF1 resize
        images = _resized(uint8_photos, size)
        with torch.no_grad():
            got = ours(images)
            pool, logits = reference(images)
        assert got.pool.shape == (2, 2048)
        assert got.logits.shape == (2, 1008)
        assert got.spatial.shape == (2, 2023)
        assert 0.1 < float(pool.std()) < 10  # calibrated: activations are O(1)
        torch.testing.assert_close(got.pool, pool, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got.logits, logits, rtol=1e-5, atol=1e-5)
        spatial = captured["branch"][:, :7].permute(0, 2, 3, 1).reshape(2, -1)
        torch.testing.assert_close(got.spatial, spatial, rtol=1e-5, atol=1e-5)


def test_inception_matches_pytorch_fid_with_identical_weights(
    inception_weights, uint8_photos, monkeypatch, pin_sha256
):
    pin_sha256(inception_module, "INCEPTION_WEIGHTS", inception_weights)
    state = load_state_dict(inception_weights)
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", lambda *a, **k: state)
    reference = pytorch_fid.inception.InceptionV3([3]).eval()
    ours = InceptionFeatures(weights_path=inception_weights, resize="pytorch-fid")
    images = _resized(uint8_photos, 256)
    with torch.no_grad():
        expected = reference(images.float() / 255)[0].flatten(1)
        got = ours(images).pool
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_inception_finds_weights_in_the_hub_cache_or_names_what_is_missing(
    tmp_path, monkeypatch, inception_weights, pin_sha256
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        InceptionFeatures()
    message = str(error.value)
    for name in INCEPTION_WEIGHTS.file_names:
        assert name in message
    assert "github.com/toshas/torch-fidelity/releases" in message
    assert INCEPTION_WEIGHTS.sha256 in message
    pin_sha256(inception_module, "INCEPTION_WEIGHTS", inception_weights)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "pt_inception-2015-12-05-6726825d.pth").write_bytes(inception_weights.read_bytes())
    assert InceptionFeatures().fc.weight.abs().sum() > 0


def test_inception_rejects_float_images_and_foreign_weights(
    tmp_path, inception_extractor, pin_sha256
):
    with pytest.raises(ValueError, match="uint8"):
        inception_extractor(torch.zeros(1, 3, 32, 32))
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, bad)
    pin_sha256(inception_module, "INCEPTION_WEIGHTS", bad)  # past the checksum: the keys are wrong
    with pytest.raises(ValueError, match="missing"):
        InceptionFeatures(weights_path=bad)


def test_to_uint8_rounds_the_minus_one_to_one_range():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.999, 1.0]).view(1, 1, 1, 5)
    assert to_uint8(x).flatten().tolist() == [0, 64, 128, 255, 255]

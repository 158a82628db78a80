"""Pins LPIPS to the lpips package with identical weights, and checks its use as a frozen loss."""

import re

import lpips
import pytest
import torch

from freqlat.metrics import LPIPS
from freqlat.metrics.perceptual import TRUNK_WEIGHTS

# lpips 0.1.4 builds its trunks with torchvision's deprecated ``pretrained=`` argument.
pytestmark = pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")


def _reference_with_our_weights(ours: LPIPS, net: str, version: str) -> torch.nn.Module:
    """lpips.LPIPS with a random trunk, then every tensor overwritten by ours."""
    reference = lpips.LPIPS(pnet_rand=True, net=net, version=version, verbose=False)
    state = {}
    for key in reference.state_dict():
        if key.startswith("net.slice"):
            index_and_rest = key.split(".", 2)[2]  # net.sliceK.<idx>.<param>
            state[key] = ours.features.state_dict()[index_and_rest]
        elif key.startswith("lin"):
            # Both "lin<i>.model.1.weight" and its ModuleList alias "lins.<i>.model.1.weight".
            layer = int(re.match(r"lins?\.?(\d+)\.", key).group(1))
            state[key] = ours.lins[layer].weight
        else:
            state[key] = reference.state_dict()[key]
    reference.load_state_dict(state)
    return reference.eval()


@pytest.mark.parametrize(("net", "version"), [("alex", "0.1"), ("vgg", "0.1"), ("squeeze", "0.0")])
def test_lpips_matches_reference_package_with_identical_weights(net, version, photos, degraded):
    torch.manual_seed(0)
    ours = LPIPS(net, version, pretrained=False).double()
    reference = _reference_with_our_weights(ours, net, version).double()
    x, y = photos[:2].double(), degraded[:2].double()
    with torch.no_grad():
        expected = reference(x, y).flatten()
        got = ours(x, y)
    assert got.shape == (2,)
    assert float(expected.abs().min()) > 0
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-9)


def test_lpips_is_zero_on_identical_images_symmetric_and_positive(photos, degraded):
    torch.manual_seed(1)
    metric = LPIPS("alex", pretrained=False)
    x, y = photos[:2], degraded[:2]
    assert torch.all(metric(x, x) == 0)
    assert torch.all(metric(x, y) > 0)
    torch.testing.assert_close(metric(x, y), metric(y, x))


def test_lpips_is_a_frozen_loss_that_survives_train_and_bf16_autocast(photos, degraded):
    torch.manual_seed(2)
    metric = LPIPS("alex", pretrained=False)
    parent = torch.nn.Sequential(metric)
    parent.train()
    assert not metric.training
    assert all(not p.requires_grad for p in metric.parameters())
    x = degraded[:2].clone().requires_grad_(True)
    reference = metric(x, photos[:2]).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = metric(x, photos[:2])
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.detach(), reference, rtol=0.1, atol=0.0)
    loss.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in metric.parameters())


def test_lpips_loads_trunk_from_the_hub_cache_and_linear_layers_from_the_wheel(
    tmp_path, monkeypatch, pin_sha256
):
    torch.manual_seed(3)
    source = LPIPS("alex", pretrained=False)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    full_checkpoint = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    full_checkpoint["classifier.1.weight"] = torch.zeros(
        2, 2
    )  # torchvision files hold the head too
    torch.save(full_checkpoint, checkpoints / "alexnet-owt-7be5be79.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    pin_sha256(TRUNK_WEIGHTS, "alex", checkpoints / "alexnet-owt-7be5be79.pth")

    loaded = LPIPS("alex", "0.1")
    for key, value in source.features.state_dict().items():
        assert torch.equal(loaded.features.state_dict()[key], value)
    wheel = lpips.LPIPS(pnet_rand=True, net="alex", version="0.1", verbose=False)
    for i, lin in enumerate(loaded.lins):
        assert torch.equal(lin.weight, wheel.lins[i].model[1].weight)


def test_lpips_missing_trunk_names_file_paths_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        LPIPS("vgg")
    message = str(error.value)
    assert "vgg16-397923af.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert TRUNK_WEIGHTS["vgg"].url in message
    assert "sha256" in message


def test_lpips_rejects_bad_input(photos):
    metric = LPIPS("alex", pretrained=False)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        metric(photos * 3, photos)
    with pytest.raises(ValueError, match="same shape"):
        metric(photos, photos[:1])
    with pytest.raises(ValueError, match="net must be"):
        LPIPS("resnet", pretrained=False)


def test_lpips_as_a_loss_accepts_overshooting_reconstructions(photos):
    loss = LPIPS("alex", pretrained=False, check_range=False)
    overshoot = (photos * 1.2).requires_grad_()
    distance = loss(overshoot, photos)
    assert distance.shape == (photos.shape[0],) and torch.all(distance > 0)
    distance.sum().backward()
    assert overshoot.grad is not None and overshoot.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="same shape"):
        loss(photos, photos[:1])

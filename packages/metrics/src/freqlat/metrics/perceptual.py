"""LPIPS (Zhang et al. 2018), the learned perceptual distance, as a metric and a frozen loss.

Same computation as the ``lpips`` package (richzhang/PerceptualSimilarity): trunk activations at
5 (alex, vgg) or 7 (squeeze) depths, each unit-normalised over channels, squared differences
weighted by a learned 1x1 linear layer, averaged over space and summed over depths. Version 0.1
shifts and scales the [-1, 1] input to ImageNet statistics first; version 0.0 (the original
release) feeds the input unscaled.

Weights (every file is verified by :func:`freqlat.metrics.weights.verify_weights` before use):
- linear layers: the ``.pth`` files shipped in the ``lpips==0.1.4`` wheel
  (``lpips/weights/v{version}/{net}.pth``), or ``linear_path``, checked against the sha256
  pinned below;
- trunk: torchvision's ImageNet checkpoint, read from the torch hub cache under torchvision's file
  name, or from ``trunk_path``. torchvision publishes only the first 8 hex digits of each file's
  sha256 (in the file name; torch.hub checks them when it downloads); that prefix is checked.
"""

from __future__ import annotations

import importlib.resources
import os
from typing import Literal

import torch
import torch.nn as nn

from freqlat.metrics._checks import check_image_batch, check_same_shape
from freqlat.metrics.weights import (
    WeightsFile,
    load_state_dict,
    locate_weights,
    verify_weights,
)

TrunkName = Literal["alex", "vgg", "squeeze"]

# sha256 of the linear-layer files inside the lpips 0.1.4 wheel (they match the wheel's RECORD).
LINEAR_WEIGHTS_SHA256 = {
    ("0.0", "alex"): "18720f55913d0af89042f13faa7e536a6ce1444a0914e6db9461355ece1e8cd5",
    ("0.0", "squeeze"): "c27abd3a0145541baa50990817df58d3759c3f8154949f42af3b59b4e042d0bf",
    ("0.0", "vgg"): "b9e4236260c3dd988fc79d2a48d645d885afcbb21f9fd595e6744cf7419b582c",
    ("0.1", "alex"): "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    ("0.1", "squeeze"): "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
    ("0.1", "vgg"): "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
}

_TORCHVISION_NOTE = "torchvision publishes the first 8 hex digits, in the file name"


def _torchvision_trunk(description: str, file_name: str) -> WeightsFile:
    prefix = file_name.rsplit("-", 1)[1].removesuffix(".pth")  # torch.hub's <name>-<prefix>.pth
    return WeightsFile(
        description,
        (file_name,),
        f"https://download.pytorch.org/models/{file_name}",
        sha256_prefix=prefix,
        sha256_note=_TORCHVISION_NOTE,
    )


TRUNK_WEIGHTS = {
    "alex": _torchvision_trunk(
        "LPIPS alex trunk (torchvision AlexNet, ImageNet)", "alexnet-owt-7be5be79.pth"
    ),
    "vgg": _torchvision_trunk(
        "LPIPS vgg trunk (torchvision VGG16, ImageNet)", "vgg16-397923af.pth"
    ),
    "squeeze": _torchvision_trunk(
        "LPIPS squeeze trunk (torchvision SqueezeNet 1.1, ImageNet)", "squeezenet1_1-b8a52dc0.pth"
    ),
}


def linear_weights_spec(net: TrunkName, version: str) -> WeightsFile:
    """The lpips wheel's linear-layer file for ``net`` and ``version``, with its pinned sha256."""
    return WeightsFile(
        f"LPIPS {net} linear layers v{version}",
        (f"{net}.pth",),
        f"the lpips==0.1.4 wheel (pip install lpips==0.1.4), lpips/weights/v{version}/{net}.pth",
        sha256=LINEAR_WEIGHTS_SHA256[(version, net)],
        sha256_note="the wheel's RECORD",
    )


# Index (exclusive) into torchvision's ``features`` after which each LPIPS tap is taken.
TAP_ENDS = {
    "alex": (2, 5, 8, 10, 12),
    "vgg": (4, 9, 16, 23, 30),
    "squeeze": (2, 5, 8, 10, 11, 12, 13),
}
TAP_CHANNELS = {
    "alex": (64, 192, 384, 256, 256),
    "vgg": (64, 128, 256, 512, 512),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
}

# v0.1 input normalisation: (x - shift) / scale maps [-1, 1] images to ImageNet statistics.
INPUT_SHIFT = (-0.030, -0.088, -0.188)
INPUT_SCALE = (0.458, 0.448, 0.450)


def build_trunk(net: TrunkName) -> nn.Sequential:
    """torchvision's ``features`` stack for ``net``, same layer indices (so its checkpoints load)."""
    # Imported here so that ``import freqlat.metrics`` does not pay for torchvision.
    from torchvision.models.squeezenet import Fire
    from torchvision.models.vgg import cfgs as vgg_configs
    from torchvision.models.vgg import make_layers as make_vgg_layers

    if net == "vgg":
        return make_vgg_layers(vgg_configs["D"], batch_norm=False)
    if net == "alex":
        return nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
    if net == "squeeze":
        return nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )
    raise ValueError(f"net must be 'alex', 'vgg' or 'squeeze', got {net!r}")


def linear_weights_path(net: TrunkName, version: str) -> str:
    """Path of the linear-layer file shipped inside the installed ``lpips`` package."""
    resource = importlib.resources.files("lpips") / "weights" / f"v{version}" / f"{net}.pth"
    return str(resource)


class LPIPS(nn.Module):
    """LPIPS distance between two [-1, 1] image batches; returns one distance per image, (N,).

    ``pretrained=True`` (default) loads the trunk from ``trunk_path`` or the torch hub cache and
    the linear layers from the lpips wheel, raising FileNotFoundError if a file is missing and
    :class:`~freqlat.metrics.weights.WeightsVerificationError` if a file is not the published one
    (every file is sha256-checked, whatever its path). ``pretrained=False`` gives random weights (non-negative linear layers, like the
    trained ones), for tests only; it must be asked for.

    The module is frozen: no parameter requires grad and it stays in eval mode even when a parent
    module calls ``.train()``, so it can serve as a training loss (gradients flow to the inputs).
    As a loss, build it with ``check_range=False``: decoder outputs are not clamped and may leave
    [-1, 1], which the metric rejects (upstream LPIPS does not check either).
    Under autocast the trunk runs in the autocast dtype and the per-layer head in float32.
    """

    def __init__(
        self,
        net: TrunkName = "vgg",
        version: Literal["0.1", "0.0"] = "0.1",
        *,
        pretrained: bool = True,
        trunk_path: str | os.PathLike[str] | None = None,
        linear_path: str | os.PathLike[str] | None = None,
        check_range: bool = True,
    ) -> None:
        super().__init__()
        self.check_range = check_range
        if net not in TAP_ENDS:
            raise ValueError(f"net must be 'alex', 'vgg' or 'squeeze', got {net!r}")
        if version not in ("0.1", "0.0"):
            raise ValueError(f"version must be '0.1' or '0.0', got {version!r}")
        self.net_name = net
        self.version = version
        self.tap_ends = TAP_ENDS[net]
        self.features = build_trunk(net)
        self.lins = nn.ModuleList(
            nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in TAP_CHANNELS[net]
        )
        self.register_buffer("shift", torch.tensor(INPUT_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(INPUT_SCALE).view(1, 3, 1, 1), persistent=False)
        if pretrained:
            self.load_trunk(locate_weights(TRUNK_WEIGHTS[net], trunk_path))
            self.load_linear_layers(linear_path)
        else:
            if trunk_path is not None or linear_path is not None:
                raise ValueError("trunk_path/linear_path are only read when pretrained=True")
            with torch.no_grad():
                for lin in self.lins:
                    lin.weight.abs_()  # trained LPIPS weights are non-negative; keep d >= 0

        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> LPIPS:
        """Ignore ``mode``: LPIPS is a fixed metric and always stays in eval mode."""
        return super().train(False)

    def load_trunk(self, path: str | os.PathLike[str]) -> None:
        """Load torchvision ``features.*`` weights (a full torchvision checkpoint is fine).

        The file must be torchvision's own (its sha256 prefix is checked).
        """
        verify_weights(TRUNK_WEIGHTS[self.net_name], path)
        state = load_state_dict(path)
        trunk_state = {
            k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
        }
        if not trunk_state:
            raise ValueError(
                f"{path} has no 'features.*' keys: not a torchvision {self.net_name} checkpoint"
            )
        self.features.load_state_dict(trunk_state, strict=True)

    def load_linear_layers(self, path: str | os.PathLike[str] | None = None) -> None:
        """Load the ``lin{i}.model.1.weight`` tensors, from the wheel or ``path`` (sha256-checked)."""
        if path is None:
            path = linear_weights_path(self.net_name, self.version)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"LPIPS linear layers {self.net_name} v{self.version} not found at {path}; "
                    "install lpips==0.1.4 (pip install lpips==0.1.4), which ships them"
                )
        verify_weights(linear_weights_spec(self.net_name, self.version), path)
        state = load_state_dict(path)
        expected = {f"lin{i}.model.1.weight" for i in range(len(self.lins))}
        if set(state) != expected:
            raise ValueError(f"{path}: expected keys {sorted(expected)}, got {sorted(state)}")
        with torch.no_grad():
            for i, lin in enumerate(self.lins):
                lin.weight.copy_(state[f"lin{i}.model.1.weight"])

    def layer_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Trunk activations at each LPIPS tap for an input already in trunk scaling."""
        taps = []
        start = 0
        for end in self.tap_ends:
            for layer in self.features[start:end]:
                x = layer(x)
            taps.append(x)
            start = end
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS distance between ``x`` and ``y`` (both N x 3 x H x W in [-1, 1])."""
        check_image_batch(x, "x", self.check_range)
        check_image_batch(y, "y", self.check_range)
        check_same_shape(x, y, ("x", "y"))
        if x.shape[1] != 3:
            raise ValueError(f"LPIPS needs RGB images (3 channels), got {x.shape[1]}")
        both = torch.cat([x, y])
        if self.version == "0.1":
            both = (both - self.shift.to(both.dtype)) / self.scale.to(both.dtype)
        n = x.shape[0]
        total = torch.zeros(n, dtype=torch.promote_types(x.dtype, torch.float32), device=x.device)
        for tap, lin in zip(self.layer_features(both), self.lins, strict=True):
            tap = tap.to(total.dtype)
            unit = tap / (tap.square().sum(1, keepdim=True).sqrt() + 1e-10)
            diff = (unit[:n] - unit[n:]).square()
            with torch.autocast(device_type=diff.device.type, enabled=False):
                weighted = nn.functional.conv2d(diff, lin.weight.to(diff.dtype))
            total = total + weighted.mean(dim=(1, 2, 3))
        return total

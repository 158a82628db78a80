"""The FID Inception network (the 2015-12-05 TensorFlow graph ported to PyTorch) as a feature extractor.

This is the network behind TF-FID, ADM's evaluator, torch-fidelity and pytorch-fid: Inception v3
with the TF graph's quirks (average pools that do not count padding, a max pool in the last
block's pool branch, BatchNorm eps 1e-3, 1008 output classes). One forward pass gives

- ``pool``: the 2048-d average-pooled features (FID, precision/recall);
- ``logits``: 1008 unbiased logits, ``pool @ fc.weight.T`` without the bias (Inception Score; ADM
  takes softmax(pool @ W) from the graph's ``softmax/logits/MatMul`` weights, torch-fidelity its
  ``logits_unbiased``);
- ``spatial``: sFID's features. ADM reads the graph tensor ``mixed_6/conv:0`` and keeps its first
  7 channels. ``mixed_6`` is the graph's 7th mixed block, which torch-fidelity's weight conversion
  maps to ``Mixed_6d``, and ``mixed_6/conv`` is that block's 1x1 branch after BatchNorm and ReLU
  (``Mixed_6d.branch1x1``, 192 x 17 x 17). Its first 7 channels, flattened in TF's NHWC order
  (h, w, c), give 17 * 17 * 7 = 2023 numbers per image, in the same order as ADM's ``mu_s``.

Input preprocessing (``resize``):
- ``"tf1"`` (torch-fidelity, ADM): uint8 values as floats, TensorFlow-1 bilinear resize to 299
  (``align_corners=False``, no half-pixel offset), then ``(x - 128) / 128``.
- ``"pytorch-fid"``: ``x / 255``, ``F.interpolate(bilinear, align_corners=False)`` to 299 (PyTorch's
  half-pixel convention), then ``2 x - 1``. This is pytorch-fid's ``InceptionV3`` default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from freqlat.metrics._checks import check_image_batch, check_uint8_batch
from freqlat.metrics.weights import WeightsFile, load_state_dict, locate_weights, verify_weights

INCEPTION_SIZE = 299
SPATIAL_CHANNELS = 7

# Neither torch-fidelity nor pytorch-fid publishes a checksum, and neither checks one when it
# downloads. Both release the same 95,628,359-byte file, and both file names carry the first 8 hex
# digits of its sha256 by torch.hub's ``<name>-<prefix>.pth`` convention (as torchvision's do).
# The full digest below is the one that projects pinning this file record for it (check it with
# ``sha256sum`` on the released file); it begins with that published prefix.
INCEPTION_WEIGHTS = WeightsFile(
    "FID Inception v3 (TF 2015-12-05 graph ported to PyTorch)",
    ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth"),
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth (torch-fidelity) or "
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth (pytorch-fid)",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    sha256_prefix="6726825d",
    sha256_note=(
        "the prefix 6726825d is published in both file names; neither torch-fidelity nor "
        "pytorch-fid publishes the full digest"
    ),
)

ResizeMode = Literal["tf1", "pytorch-fid"]


def resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize with TensorFlow 1.x semantics (``align_corners=False``, no half-pixel shift).

    Output pixel i samples the input at ``i * in / out``; the four neighbours are blended in the
    same order and dtype as torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x``.
    """

    def axis(in_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        position = torch.arange(size, dtype=x.dtype, device=x.device) * torch.tensor(
            in_size / size, dtype=torch.float32
        )
        low = position.long()
        high = (low + 1).clamp_max(in_size - 1)
        return low, high, position - low.float()

    y_lo, y_hi, dy = axis(x.shape[2])
    x_lo, x_hi, dx = axis(x.shape[3])
    top, bottom = x.index_select(2, y_lo), x.index_select(2, y_hi)
    dx = dx.view(1, 1, 1, size)
    top = top.index_select(3, x_lo) + (top.index_select(3, x_hi) - top.index_select(3, x_lo)) * dx
    bottom = (
        bottom.index_select(3, x_lo)
        + (bottom.index_select(3, x_hi) - bottom.index_select(3, x_lo)) * dx
    )
    return top + (bottom - top) * dy.view(1, 1, size, 1)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images to uint8 as the FA-VAE author's evaluation writes its PNGs.

    ``round(clamp((x + 1) / 2, 0, 1) * 255)`` in float32, rounding half to even (numpy's and
    torch's ``round``).
    """
    check_image_batch(x)
    return (((x.float() + 1) / 2).clamp(0, 1) * 255).round().to(torch.uint8)


class ConvBN(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3, as in the TF graph), ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """conv -> bn -> relu."""
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TF's 3x3 average pool divides by the number of real (unpadded) inputs.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class MixedA(nn.Module):
    """35 x 35 block (Mixed_5b/c/d): 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_channels: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(in_channels, 64, 1)
        self.branch5x5_1 = ConvBN(in_channels, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(in_channels, pool_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the four branches along channels."""
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                double,
                self.branch_pool(_tf_avg_pool(x)),
            ],
            1,
        )


class ReductionA(nn.Module):
    """35 -> 17 reduction (Mixed_6a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Strided conv, strided double conv and max pool, concatenated."""
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), double, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class MixedC(nn.Module):
    """17 x 17 block with factorised 7x7 convolutions (Mixed_6b..6e)."""

    def __init__(self, in_channels: int, mid: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(in_channels, 192, 1)
        self.branch7x7_1 = ConvBN(in_channels, mid, 1)
        self.branch7x7_2 = ConvBN(mid, mid, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(mid, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(in_channels, mid, 1)
        self.branch7x7dbl_2 = ConvBN(mid, mid, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(mid, mid, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(mid, mid, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(mid, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(in_channels, 192, 1)

    def forward_with_branch1x1(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block output and its 1x1 branch (the latter is sFID's tensor in Mixed_6d)."""
        single = self.branch1x1(x)
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            double = layer(double)
        pooled = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([single, seven, double, pooled], 1), single

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the four branches along channels."""
        return self.forward_with_branch1x1(x)[0]


class ReductionB(nn.Module):
    """17 -> 8 reduction (Mixed_7a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(in_channels, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(in_channels, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Two strided conv towers and a max pool, concatenated."""
        tower = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat(
            [
                self.branch3x3_2(self.branch3x3_1(x)),
                tower,
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            1,
        )


class MixedE(nn.Module):
    """8 x 8 block with split 1x3/3x1 convolutions (Mixed_7b, Mixed_7c).

    The TF graph pools the last branch with an average pool in Mixed_7b and a max pool in Mixed_7c.
    """

    def __init__(self, in_channels: int, pool: Literal["avg", "max"]) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = ConvBN(in_channels, 320, 1)
        self.branch3x3_1 = ConvBN(in_channels, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(in_channels, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the branches (the 3x3 towers each split in two) along channels."""
        narrow = self.branch3x3_1(x)
        wide = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        if self.pool == "avg":
            pooled = _tf_avg_pool(x)
        else:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(narrow),
                self.branch3x3_2b(narrow),
                self.branch3x3dbl_3a(wide),
                self.branch3x3dbl_3b(wide),
                self.branch_pool(pooled),
            ],
            1,
        )


@dataclass
class InceptionOutput:
    """Features of one batch: ``pool`` (N, 2048), ``logits`` (N, 1008), ``spatial`` (N, 2023)."""

    pool: torch.Tensor
    logits: torch.Tensor
    spatial: torch.Tensor


class InceptionFeatures(nn.Module):
    """FID Inception v3: uint8 images in, pool / unbiased-logit / sFID-spatial features out.

    ``weights_path=None`` looks in the torch hub cache for torch-fidelity's
    ``weights-inception-2015-12-05-6726825d.pth`` or pytorch-fid's
    ``pt_inception-2015-12-05-6726825d.pth`` (both use the same key names, those of this module);
    a missing file raises FileNotFoundError and a file that is not the published one (sha256, any
    path) :class:`~freqlat.metrics.weights.WeightsVerificationError`. ``pretrained=False`` keeps
    random weights (tests only).
    ``resize`` picks the preprocessing (see the module docstring). The network is frozen and stays
    in eval mode. Features come back in float32 whatever ``dtype`` the network runs in.
    """

    def __init__(
        self,
        *,
        pretrained: bool = True,
        weights_path: str | os.PathLike[str] | None = None,
        resize: ResizeMode = "tf1",
    ) -> None:
        super().__init__()
        if resize not in ("tf1", "pytorch-fid"):
            raise ValueError(f"resize must be 'tf1' or 'pytorch-fid', got {resize!r}")
        self.resize = resize
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = MixedA(192, 32)
        self.Mixed_5c = MixedA(256, 64)
        self.Mixed_5d = MixedA(288, 64)
        self.Mixed_6a = ReductionA(288)
        self.Mixed_6b = MixedC(768, 128)
        self.Mixed_6c = MixedC(768, 160)
        self.Mixed_6d = MixedC(768, 160)
        self.Mixed_6e = MixedC(768, 192)
        self.Mixed_7a = ReductionB(768)
        self.Mixed_7b = MixedE(1280, "avg")
        self.Mixed_7c = MixedE(2048, "max")
        self.fc = nn.Linear(2048, 1008)
        if pretrained:
            self.load_weights(locate_weights(INCEPTION_WEIGHTS, weights_path))
        elif weights_path is not None:
            raise ValueError("weights_path is only read when pretrained=True")
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> InceptionFeatures:
        """Ignore ``mode``: the feature extractor always stays in eval mode."""
        return super().train(False)

    def load_weights(self, path: str | os.PathLike[str]) -> None:
        """Load a torch-fidelity or pytorch-fid weights file (sha256-checked); fails on missing or
        unexpected keys."""
        verify_weights(INCEPTION_WEIGHTS, path)
        state = {
            k: v for k, v in load_state_dict(path).items() if not k.endswith("num_batches_tracked")
        }
        own = {k for k in self.state_dict() if not k.endswith("num_batches_tracked")}
        missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
        if missing or unexpected:
            raise ValueError(
                f"{path} is not an FID Inception state dict: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        self.load_state_dict(state, strict=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N x 3 x H x W -> the network input at 299 x 299, in the parameters' dtype."""
        check_uint8_batch(images)
        dtype = self.fc.weight.dtype
        x = images.to(dtype)
        if self.resize == "tf1":
            x = resize_bilinear_tf1(x, INCEPTION_SIZE)
            return (x - 128) / 128
        x = x / 255
        x = F.interpolate(
            x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False
        )
        return 2 * x - 1

    def forward(self, images: torch.Tensor) -> InceptionOutput:
        """Pool features, unbiased logits and sFID spatial features of a uint8 batch."""
        x = self.preprocess(images)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Mixed_6a(self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x))))
        x = self.Mixed_6c(self.Mixed_6b(x))
        x, branch = self.Mixed_6d.forward_with_branch1x1(x)
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(self.Mixed_6e(x))))
        pool = x.mean(dim=(2, 3))
        logits = pool @ self.fc.weight.T
        spatial = branch[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).flatten(1)
        return InceptionOutput(pool.float(), logits.float(), spatial.float())

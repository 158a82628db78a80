"""Shared fixtures for the tokenizer model tests: small images and tiny presets."""

import pytest
import timm
import torch

from freqlat.tokenizers import create_tokenizer, list_tokenizers
from freqlat.tokenizers.losses import FoundationFeatures


@pytest.fixture(scope="module", autouse=True)
def single_intra_op_thread():
    """Run this package's small convolutions on one thread, restoring the setting afterwards.

    Tiny models spend far longer synchronising threads than computing on a shared CPU.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def smooth_images() -> torch.Tensor:
    """Two 64 x 64 RGB images in [-1, 1] with smooth structure and some texture."""
    generator = torch.Generator().manual_seed(0)
    axis = torch.linspace(-1, 1, 64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    base = torch.stack([torch.sin(3 * xx + c) * torch.cos(2 * yy - c) for c in (0.0, 1.0, 2.0)])
    noise = 0.1 * torch.randn(2, 3, 64, 64, generator=generator)
    return (0.8 * base.unsqueeze(0) + noise).clamp(-1, 1)


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, torch.nn.Module]:
    """One randomly initialised instance of every tiny preset, built once per session."""
    torch.manual_seed(0)
    return {
        name: create_tokenizer(name).eval() for name in list_tokenizers() if name.endswith("-tiny")
    }


@pytest.fixture
def tiny_foundation():
    """Factory of a small random DINOv2-shaped ViT (patch 14) standing in for the real one."""

    def build() -> FoundationFeatures:
        vit = timm.create_model(
            "vit_small_patch14_dinov2",
            pretrained=False,
            img_size=28,
            embed_dim=32,
            depth=1,
            num_heads=2,
            dynamic_img_size=True,
            num_classes=0,
        )
        return FoundationFeatures(vit)

    return build


class MeanSquarePerceptual(torch.nn.Module):
    """A parameter-free stand-in for LPIPS (whose VGG weights cannot be downloaded here): the
    per-image mean squared difference, N x 1 x 1 x 1 as LPIPS returns it."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x - y).square().mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)


@pytest.fixture
def perceptual_stand_in() -> torch.nn.Module:
    """:class:`MeanSquarePerceptual`, the LPIPS stand-in of the wavelet VQ loss tests."""
    return MeanSquarePerceptual()

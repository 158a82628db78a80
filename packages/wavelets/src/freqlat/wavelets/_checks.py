"""Input validation shared by the wavelet functions."""

from __future__ import annotations

import torch

__all__ = ["check_image_batch", "check_same_shape"]


def check_image_batch(x: torch.Tensor, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``x`` is a 4-D floating-point ``N x C x H x W`` tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(
            f"{name} must be a 4-D N x C x H x W tensor, got {x.ndim}-D shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a real floating-point dtype, got {x.dtype}")


def check_same_shape(x: torch.Tensor, y: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` and ``y`` are image batches of one shape."""
    check_image_batch(x, "x")
    check_image_batch(y, "y")
    if x.shape != y.shape:
        raise ValueError(
            f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )

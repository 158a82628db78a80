"""Input checks shared by the metrics: every bad input becomes a ValueError that says what is wrong."""

from __future__ import annotations

import torch


def check_image_batch(x: torch.Tensor, name: str = "images", check_range: bool = True) -> None:
    """Require an N x C x H x W float tensor with every value in [-1, 1].

    ``check_range=False`` skips the value check (and the device sync it costs), for losses whose
    inputs (unclamped decoder outputs) may overshoot the range.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be N x C x H x W, got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"{name} must be a float tensor in [-1, 1], got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if not check_range:
        return
    low, high = (float(v) for v in torch.aminmax(x.detach()))
    if not (low >= -1.0 and high <= 1.0):
        raise ValueError(f"{name} must lie in [-1, 1], found values in [{low:.4g}, {high:.4g}]")


def check_uint8_batch(x: torch.Tensor, name: str = "images") -> None:
    """Require an N x 3 x H x W uint8 tensor (values 0..255)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise ValueError(f"{name} must be uint8 (0..255), got dtype {x.dtype}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be N x 3 x H x W, got shape {tuple(x.shape)}")


def check_same_shape(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str]) -> None:
    """Require two tensors of identical shape (batch size included)."""
    if x.shape != y.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def check_features(x: torch.Tensor, name: str, min_rows: int = 1) -> None:
    """Require a 2-D N x D feature matrix with at least ``min_rows`` rows and finite values."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be a 2-D N x D matrix, got shape {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {x.shape[0]}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")

"""Exponential moving average of a model's weights, on top of torch's AveragedModel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class EMA:
    """An exponential moving average of a model's parameters, with its buffers copied.

    Built on ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn(decay)``. The
    first :meth:`update` copies the model's parameters; every later one moves each averaged
    parameter by ``(1 - decay)`` towards the model's (``ema = decay * ema + (1 - decay) * p``).
    Buffers (normalisation statistics, codebook counters, integer counters) are not averaged but
    copied from the model on every update, so the EMA copy is always a consistent model.
    """

    def __init__(
        self, model: nn.Module, decay: float = 0.9999, device: torch.device | str | None = None
    ) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.averaged = AveragedModel(
            model, device=device, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False
        )
        self.averaged.requires_grad_(False)
        self.averaged.eval()

    @property
    def module(self) -> nn.Module:
        """The averaged copy of the model, ready for evaluation."""
        return self.averaged.module

    @property
    def num_updates(self) -> int:
        """How many times :meth:`update` has been called."""
        return int(self.averaged.n_averaged.item())

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` (plain or DDP-wrapped) into the average."""
        self.averaged.update_parameters(model)
        for ema_buffer, buffer in zip(self.module.buffers(), model.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def state_dict(self) -> dict[str, Any]:
        """Averaged weights and buffers (keys ``module.*``) plus the update counter."""
        return self.averaged.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` (strictly)."""
        self.averaged.load_state_dict(state_dict)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s parameters and buffers with the averaged ones."""
        model.load_state_dict(self.module.state_dict())

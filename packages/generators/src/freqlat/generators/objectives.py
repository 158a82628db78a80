"""The training objective of each generator family, behind one interface.

Every objective has ``training_losses(model, data, labels) -> dict`` in the style of DiT's
``GaussianDiffusion.training_losses`` (facebookresearch/DiT ``diffusion/gaussian_diffusion.py``):
the dict holds ``"loss"``, the scalar to backpropagate, and detached terms to log. ``data`` is
a batch of normalised latents N x C x h x w, or, for an objective whose ``uses_tokens`` is
true, the list of per-scale token maps. ``model`` may be wrapped in DistributedDataParallel;
every random draw comes from torch's global generator (saved and restored with a run's
checkpoint).
"""

from __future__ import annotations

from typing import Any, Protocol

from torch import Tensor, nn

from freqlat.generators.ddpm import DDPMObjective
from freqlat.generators.flow import FlowMatchingObjective
from freqlat.generators.ldm_unet import LDMUNet
from freqlat.generators.lightningdit import LightningDiT
from freqlat.generators.var import VAR
from freqlat.generators.var_training import NextScaleObjective


class TrainingObjective(Protocol):
    """What a generator training loop calls once per step."""

    uses_tokens: bool

    def training_losses(self, model: nn.Module, data: Any, labels: Tensor) -> dict[str, Tensor]:
        """The loss terms of one batch (``"loss"`` to backpropagate)."""
        ...


def training_objective(
    model: nn.Module,
    *,
    time_sampling: str = "logit-normal",
    cosine_loss: bool = True,
    label_smoothing: float = 0.0,
) -> TrainingObjective:
    """The objective of ``model``'s family: rectified flow for LightningDiT (``time_sampling``,
    ``cosine_loss``), DDPM with the model's own schedule for LDM, next-scale cross-entropy for
    VAR (``label_smoothing``). ValueError for any other model."""
    if isinstance(model, LightningDiT):
        return FlowMatchingObjective(time_sampling, cosine_loss)
    if isinstance(model, LDMUNet):
        return DDPMObjective(model.schedule)
    if isinstance(model, VAR):
        return NextScaleObjective(label_smoothing)
    raise ValueError(f"no training objective for {type(model).__name__}")

"""VAR's training objective and the published training recipe of each preset.

Sources: FoundationVision/VAR ``trainer.py`` (the loss), ``train.py`` and ``utils/lr_control.py``
(the optimiser and its parameter groups), ``utils/arg_util.py`` (defaults) and ``README.md``
(the training command of each model).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from freqlat.generators.var import VAR


class NextScaleObjective:
    """Cross-entropy of every token of every scale, uniformly weighted (upstream's 1/L weights).

    ``objective(model, labels, indices)`` builds the teacher-forcing input from the K token
    maps with the model's quantiser, runs the model and returns ``"loss"`` (the mean
    cross-entropy over all N x L tokens, with optional label smoothing; backpropagate it) and
    detached logging terms: ``"ce"`` (without smoothing), ``"ce_last_scale"``, ``"accuracy"``
    and ``"accuracy_last_scale"`` (top-1, in [0, 1]). The model may be wrapped in
    DistributedDataParallel (its ``module`` builds the teacher-forcing input).
    """

    uses_tokens = True

    def __init__(self, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def __call__(self, model: VAR, labels: Tensor, indices: list[Tensor]) -> dict[str, Tensor]:
        """The loss terms of one batch (see the class docstring)."""
        batch = labels.shape[0]
        inner = getattr(model, "module", model)
        targets = torch.cat([idx.reshape(batch, -1) for idx in indices], dim=1)
        logits = model(labels, inner.teacher_forcing_inputs(indices))
        vocab = logits.shape[-1]
        loss = F.cross_entropy(
            logits.reshape(-1, vocab), targets.reshape(-1), label_smoothing=self.label_smoothing
        )
        with torch.no_grad():
            last = inner.patch_sizes[-1] ** 2
            flat = logits.detach().float()
            correct = flat.argmax(dim=-1) == targets
            return {
                "loss": loss,
                # Without smoothing the loss is the cross-entropy: not computed twice.
                "ce": loss.detach()
                if self.label_smoothing == 0
                else F.cross_entropy(flat.reshape(-1, vocab), targets.reshape(-1)),
                "ce_last_scale": F.cross_entropy(
                    flat[:, -last:].reshape(-1, vocab), targets[:, -last:].reshape(-1)
                ),
                "accuracy": correct.float().mean(),
                "accuracy_last_scale": correct[:, -last:].float().mean(),
            }

    def training_losses(
        self, model: VAR, indices: list[Tensor], labels: Tensor
    ) -> dict[str, Tensor]:
        """The loss terms of one batch, the token maps first (the objective interface of
        ``freqlat.generators.training_objective``); class dropout uses torch's global RNG."""
        return self(model, labels, indices)


# Name fragments upstream trains without weight decay, besides every 1-D parameter and bias
# (FoundationVision/VAR train.py, nowd_keys); in VAR they match the position and level
# embeddings, the shared-AdaLN offsets and the attention scales.
_NO_DECAY_KEYS = (
    "cls_token", "start_token", "task_token", "cfg_uncond",
    "pos_embed", "pos_1LC", "pos_start", "start_pos", "lvl_embed",
    "gamma", "beta",
    "ada_gss", "moe_bias",
    "scale_mul",
)  # fmt: skip


def decays(name: str, parameter: nn.Parameter) -> bool:
    """Whether upstream applies weight decay to parameter ``name`` (2-D+ weights, not embeddings)."""
    if parameter.ndim == 1 or name.endswith("bias"):
        return False
    return not any(key in name for key in _NO_DECAY_KEYS)


@dataclass(frozen=True)
class VARTrainingRecipe:
    """A preset's published training recipe.

    AdamW with ``betas``, peak learning rate ``base_lr`` x batch / 256, weight decay on the
    weights :func:`decays` selects (cosine from ``weight_decay`` to ``final_weight_decay``),
    gradients clipped to norm ``grad_clip``. The learning-rate schedule is upstream's ``lin0``:
    linear warm-up from ``warmup_start_ratio`` over ``warmup_epochs``, constant for the next
    5 % of the remaining steps, then linear down to ``final_lr_ratio``. ``precision`` is the
    mixed precision of the published run.
    """

    batch_size: int = 768
    epochs: int = 200
    base_lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.05
    final_weight_decay: float = 0.05
    grad_clip: float = 2.0
    label_smoothing: float = 0.0
    warmup_epochs: float = 4.0
    warmup_start_ratio: float = 0.005
    final_lr_ratio: float = 0.1
    schedule: str = "lin0"
    precision: str = "fp16"

    def peak_lr(self, batch_size: int | None = None) -> float:
        """``base_lr`` x (global batch / 256), for ``batch_size`` or the recipe's own."""
        return self.base_lr * (batch_size or self.batch_size) / 256

    def param_groups(self, model: nn.Module) -> list[dict]:
        """Two AdamW groups: decayed weights (``weight_decay``) and the rest (0)."""
        decayed, plain = [], []
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                (decayed if decays(name, parameter) else plain).append(parameter)
        return [
            {"params": decayed, "weight_decay": self.weight_decay},
            {"params": plain, "weight_decay": 0.0},
        ]

    def optimizer(self, model: nn.Module, batch_size: int | None = None) -> torch.optim.AdamW:
        """AdamW over :meth:`param_groups` at :meth:`peak_lr` (the schedule is the caller's).

        Fused (one kernel for the whole update) when every parameter is on a GPU, as upstream's
        train.py builds it (``fused=args.afuse``, on by default); build it after moving the model.
        """
        groups = self.param_groups(model)
        fused = all(p.is_cuda for group in groups for p in group["params"])
        return torch.optim.AdamW(
            groups,
            lr=self.peak_lr(batch_size),
            betas=self.betas,
            **({"fused": True} if fused else {}),
        )


# FoundationVision/VAR README.md training commands; warm-up is epochs / 50 (arg_util.py).
VAR_TRAINING_RECIPES: dict[str, VARTrainingRecipe] = {
    "var-d16": VARTrainingRecipe(batch_size=768, epochs=200, warmup_epochs=4.0),
    "var-d20": VARTrainingRecipe(batch_size=768, epochs=250, warmup_epochs=5.0),
    "var-d24": VARTrainingRecipe(
        batch_size=768, epochs=350, base_lr=8e-5, warmup_epochs=7.0, final_lr_ratio=0.01
    ),
    "var-d30": VARTrainingRecipe(
        batch_size=1024,
        epochs=350,
        base_lr=8e-5,
        warmup_epochs=7.0,
        final_lr_ratio=0.01,
        final_weight_decay=0.08,
    ),
    # Ours, for CPU demos: upstream's optimiser at a small batch, in float32.
    "var-tiny": VARTrainingRecipe(batch_size=16, epochs=10, warmup_epochs=0.2, precision="fp32"),
}


def var_training_recipe(preset: str) -> VARTrainingRecipe:
    """The training recipe of VAR preset ``preset``; ValueError naming the ones there are."""
    if preset not in VAR_TRAINING_RECIPES:
        raise ValueError(
            f"no VAR training recipe for {preset!r}; choose one of {sorted(VAR_TRAINING_RECIPES)}"
        )
    return VAR_TRAINING_RECIPES[preset]

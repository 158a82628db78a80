"""One objective interface per family: what each computes, and that a DDP wrapper is seen through."""

import pytest
import torch
from torch import nn

from freqlat.generators import (
    DDPMObjective,
    FlowMatchingObjective,
    NextScaleObjective,
    create_generator,
    flow_matching_loss,
    training_objective,
)


class Wrapped(nn.Module):
    """Stands for DistributedDataParallel: forwards calls, holds the model as ``module``."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def _dit():
    torch.manual_seed(0)
    return create_generator("lightningdit-tiny", input_size=2, in_channels=4, num_classes=5)


def test_each_family_gets_its_objective():
    assert isinstance(training_objective(_dit()), FlowMatchingObjective)
    ldm = create_generator("ldm-tiny", latent_channels=4)
    objective = training_objective(ldm)
    assert isinstance(objective, DDPMObjective) and objective.schedule is ldm.schedule
    with pytest.raises(ValueError, match="no training objective"):
        training_objective(nn.Linear(2, 2))


def test_flow_objective_is_flow_matching_loss_with_its_options():
    model = _dit().train()
    x1, labels = torch.randn(3, 4, 2, 2), torch.tensor([0, 1, 4])
    objective = FlowMatchingObjective("uniform", cosine_loss=False)
    torch.manual_seed(5)
    ours = objective.training_losses(Wrapped(model), x1, labels)
    torch.manual_seed(5)
    reference = flow_matching_loss(model, x1, labels, time_sampling="uniform", cosine_loss=False)
    assert set(ours) == {"loss", "mse", "t"}
    assert torch.equal(ours["loss"], reference["loss"]) and torch.equal(ours["t"], reference["t"])
    with pytest.raises(ValueError, match="time sampling"):
        FlowMatchingObjective("normal")


def test_ddpm_objective_through_a_wrapper_draws_like_the_bare_model():
    torch.manual_seed(0)
    model = create_generator("ldm-tiny", latent_channels=4).train()
    objective = DDPMObjective(model.schedule)
    x0, labels = torch.randn(2, 4, 4, 4), torch.tensor([1, 2])
    torch.manual_seed(3)
    wrapped = objective.training_losses(Wrapped(model), x0, labels)
    torch.manual_seed(3)
    bare = objective(model, x0, labels)
    assert torch.equal(wrapped["loss"], bare["loss"])


def test_next_scale_objective_takes_token_maps_first_and_sees_through_a_wrapper(
    tiny_tokenizer, tiny_var
):
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    indices = tiny_tokenizer.encode_indices(images)
    labels = torch.tensor([3, 9])
    objective = training_objective(tiny_var, label_smoothing=0.1)
    assert isinstance(objective, NextScaleObjective) and objective.uses_tokens
    wrapped = objective.training_losses(Wrapped(tiny_var), indices, labels)
    bare = objective(tiny_var, labels, indices)
    assert wrapped.keys() == bare.keys()
    for key in bare:
        assert torch.equal(wrapped[key], bare[key]), key

"""Two gloo processes: the gradients of every generator family's objective under DDP, each rank on
its half of the batch, equal one process's on the whole batch."""

import torch

WORLD_SIZE = 2

# The three models from one seed; each objective on rows rank::world of fixed batches with fixed
# noise and times (eval mode: no label dropout), through DDP when there are several processes.
FAMILY_GRADIENTS = """
import torch

from freqlat.core import wrap_ddp
from freqlat.generators import create_generator, flow_matching_loss, training_objective
from freqlat.tokenizers import create_tokenizer


def family_gradients(ctx, rank, world):
    torch.manual_seed(0)
    tokenizer = create_tokenizer("ms-vq-vae-tiny").eval()
    models = {
        "dit": create_generator("lightningdit-tiny", input_size=2, in_channels=4, depth=2),
        "ldm": create_generator("ldm-tiny", latent_channels=4),
        "var": create_generator("var-tiny", tokenizer=tokenizer),
    }
    data = torch.Generator().manual_seed(1)
    x = torch.randn(4, 4, 2, 2, generator=data)
    noise = torch.randn(4, 4, 2, 2, generator=data)
    t = torch.rand(4, generator=data)
    steps = torch.randint(0, 1000, (4,), generator=data)
    labels = torch.tensor([0, 5, 9, 2])
    with torch.no_grad():
        indices = tokenizer.encode_indices(torch.rand(4, 3, 64, 64, generator=data) * 2 - 1)
    rows = slice(rank, None, world)
    grads = {}
    for name, model in models.items():
        model.eval()
        net = wrap_ddp(model, ctx) if world > 1 else model
        objective = training_objective(model)
        if name == "dit":
            terms = flow_matching_loss(net, x[rows], labels[rows], x0=noise[rows], t=t[rows])
        elif name == "ldm":
            terms = objective.loss_at(net, x[rows], labels[rows], steps[rows], noise[rows])
        else:
            terms = objective.training_losses(net, [m[rows] for m in indices], labels[rows])
        terms["loss"].backward()
        for key, param in model.named_parameters():
            if param.grad is not None:
                grads[f"{name}.{key}"] = param.grad.clone()
    return grads
"""

RANK_SCRIPT = (
    FAMILY_GRADIENTS
    + """
import sys

from freqlat.core import cleanup, init_distributed

torch.set_num_threads(1)
ctx = init_distributed(use_cuda=False)
try:
    torch.save(family_gradients(ctx, ctx.rank, ctx.world_size), f"{sys.argv[1]}/rank{ctx.rank}.pt")
finally:
    cleanup()
"""
)


def test_two_process_ddp_gradients_of_every_family_equal_one_process(
    tmp_path, start_ranks, one_thread
):
    ranks = start_ranks(RANK_SCRIPT, [str(tmp_path)], WORLD_SIZE, tmp_path / "logs")
    for rank, process in enumerate(ranks):
        assert process.wait(timeout=600) == 0, (tmp_path / "logs" / f"rank{rank}.txt").read_text()
    namespace: dict = {}
    exec(FAMILY_GRADIENTS, namespace)
    single = namespace["family_gradients"](None, 0, 1)
    per_rank = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]
    assert per_rank[0].keys() == per_rank[1].keys() == single.keys()
    assert {key.split(".")[0] for key in single} == {"dit", "ldm", "var"}
    for key, expected in single.items():
        assert torch.equal(per_rank[0][key], per_rank[1][key]), key  # DDP averaged them
        torch.testing.assert_close(per_rank[0][key], expected, rtol=1e-4, atol=1e-6)

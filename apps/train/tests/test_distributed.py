"""Two gloo processes: DDP gradients equal one process's, and a DDP run trains to the end.

(The averaging of the loss's own gradients is tested with the harness, in packages/core.)"""

import os
import subprocess
import sys

import pytest
import torch

from freqlat.core import list_checkpoints

DDP_SCRIPT = """
import sys
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from freqlat.tokenizers import create_tokenizer

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
model = create_tokenizer("kl-vae-f16d16-tiny")
images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
ddp = DistributedDataParallel(model)
local = images[rank::world]
output = ddp(local, sample=False)
loss = (output.recon - local).square().mean() + 1e-6 * output.posterior.kl().mean()
loss.backward()
grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
torch.save(grads, f"{sys.argv[1]}/ddp_rank{rank}.pt")
dist.destroy_process_group()
"""


def _torchrun(port: int, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        str(port),
        *args,
    ]


def _run_script_on_two_ranks(port: int, source: str, tmp_path, timeout: int) -> None:
    """Run ``source`` as a script on 2 gloo ranks (torchrun, one thread each) with ``tmp_path``
    as its argument; fail with the tail of its stderr if it does not exit cleanly."""
    script = tmp_path / "ranks.py"
    script.write_text(source)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        _torchrun(port, str(script), str(tmp_path)),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_process_gloo_ddp_gradients_match_one_process(tmp_path, free_port):
    _run_script_on_two_ranks(free_port(), DDP_SCRIPT, tmp_path, timeout=600)

    from freqlat.tokenizers import create_tokenizer

    torch.manual_seed(0)
    model = create_tokenizer("kl-vae-f16d16-tiny")
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    # the mean of the two ranks' per-shard losses is the full-batch loss (equal shards)
    output = model(images, sample=False)
    loss = (output.recon - images).square().mean() + 1e-6 * output.posterior.kl().mean()
    loss.backward()
    ranks = [torch.load(tmp_path / f"ddp_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert set(ranks[0]) == {n for n, p in model.named_parameters() if p.grad is not None}
    for name, param in model.named_parameters():
        if param.grad is None:
            continue
        torch.testing.assert_close(ranks[0][name], ranks[1][name], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0][name], param.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_two_process_gloo_ddp_run_trains_fa_vae_to_the_end(tmp_path, tiny_args, free_port):
    run_dir = tmp_path / "run"
    args = tiny_args(run_dir, steps=4, batch_size=2, disc_start=1, checkpoint_every=2)
    args[1:3] = ["--preset", "fa-vae-f16d32-tiny"]
    command = _torchrun(free_port(), "-m", "freqlat.train", *args)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    final = list_checkpoints(run_dir / "checkpoints")[-1]
    assert final.name == "step_000000004"
    assert sorted(p.name for p in final.glob("rng_rank_*.pt")) == [
        "rng_rank_00000.pt",
        "rng_rank_00001.pt",
    ]
    assert (run_dir / "export" / "ema" / "model.safetensors").is_file()

"""Exact resume under DDP: a 2-process gloo run that is interrupted and restarted ends with the
weights, optimiser states and per-rank RNG states of a 2-process run that never stopped.

Every start is a new pair of rank processes that trains a list of tiny runs in order. The first
start trains the uninterrupted references, then FA-VAE stopped after step 2 (its steps set to 2),
then the KL-VAE run (12 steps, a checkpoint every 3), whose two ranks are SIGKILLed at a
random moment after its first checkpoint. The second start resumes both from their latest
checkpoints and trains them to the end.
"""

import json
import random
import signal
import time
from types import SimpleNamespace

import torch

from freqlat.core import latest_checkpoint
from freqlat.train.cli import parse_overrides
from freqlat.train.components import build_loader
from freqlat.train.config import resolve_config

WORLD_SIZE = 2
KL_STEPS = 12
FA_STEPS = 4
FA_STOP = 2

# Every rank trains the runs given as a JSON list of CLI argument lists, in order, in one
# process group.
RANK_SCRIPT = """
import json
import sys

import torch

from freqlat.core import cleanup, init_distributed
from freqlat.train.cli import parse_overrides
from freqlat.train.config import resolve_config
from freqlat.train.loop import train_tokenizer

torch.set_num_threads(1)
ctx = init_distributed()
try:
    for args in json.loads(sys.argv[1]):
        train_tokenizer(resolve_config(args[2], parse_overrides(args[3:])), ctx)
finally:
    cleanup()
"""


def _run_args(tiny_args, run_dir, preset: str, steps: int) -> list[str]:
    """A tiny 2-process run: batch 2 per rank, GAN from step 1, a checkpoint every 3 steps."""
    args = tiny_args(
        run_dir,
        steps=steps,
        batch_size=2,
        disc_start=1,
        checkpoint_every=3,
        keep_checkpoints=3,
        grid_every=3,
        grid_images=2,
        log_every=1,
    )
    args[1:3] = ["--preset", preset]
    return args


def _wait_all(processes, log_dir) -> None:
    for rank, process in enumerate(processes):
        code = process.wait(timeout=600)
        assert code == 0, (log_dir / f"rank{rank}.txt").read_text()[-3000:]


def _final(run_dir, steps: int):
    return run_dir / "checkpoints" / f"step_{steps:09d}"


def test_two_process_run_interrupted_and_restarted_matches_uninterrupted_two_process_run(
    tmp_path, tiny_args, start_ranks, first_checkpoint, same_training_state, same_rank_rngs
):
    kl, fa = "kl-vae-f16d16-tiny", "fa-vae-f16d32-tiny"
    dirs = {name: tmp_path / name for name in ("kl_ref", "fa_ref", "kl", "fa")}
    first_start = [
        _run_args(tiny_args, dirs["kl_ref"], kl, KL_STEPS),
        _run_args(tiny_args, dirs["fa_ref"], fa, FA_STEPS),
        _run_args(tiny_args, dirs["fa"], fa, FA_STOP),
        _run_args(tiny_args, dirs["kl"], kl, KL_STEPS),
    ]
    logs = tmp_path / "logs"
    ranks = start_ranks(RANK_SCRIPT, [json.dumps(first_start)], WORLD_SIZE, logs)
    first_checkpoint(ranks, dirs["kl"] / "checkpoints")
    time.sleep(random.Random().uniform(0.0, 0.3))  # land anywhere in the next steps
    assert all(p.poll() is None for p in ranks), "the run finished before it could be killed"
    for process in ranks:
        process.send_signal(signal.SIGKILL)
    for process in ranks:
        process.wait()
    killed_at = latest_checkpoint(dirs["kl"] / "checkpoints")
    assert killed_at is not None and killed_at.name != f"step_{KL_STEPS:09d}"
    stopped_at = latest_checkpoint(dirs["fa"] / "checkpoints")
    assert stopped_at is not None and stopped_at.name == f"step_{FA_STOP:09d}"

    second_start = [
        _run_args(tiny_args, dirs["kl"], kl, KL_STEPS),
        _run_args(tiny_args, dirs["fa"], fa, FA_STEPS),
    ]
    ranks = start_ranks(RANK_SCRIPT, [json.dumps(second_start)], WORLD_SIZE, logs)
    _wait_all(ranks, logs)
    assert f"resumed from {killed_at}" in (dirs["kl"] / "train.log").read_text()
    assert f"resumed from {stopped_at}" in (dirs["fa"] / "train.log").read_text()

    for run, steps in (("kl", KL_STEPS), ("fa", FA_STEPS)):
        final, reference = _final(dirs[run], steps), _final(dirs[f"{run}_ref"], steps)
        same_training_state(final, reference)
        same_rank_rngs(final, reference, WORLD_SIZE)


def test_each_rank_resumes_its_own_shard_from_the_saved_data_position(tmp_path):
    """Rank 0's saved data position restarts every rank's stream at its own next batch.

    165 training crops over 2 ranks in batches of 16 make 5 batches per epoch: stopping after
    2 batches resumes mid-epoch, stopping after 5 at the start of the next epoch.
    """
    config = resolve_config(
        "kl-vae-f16d16-tiny", parse_overrides(["--run-dir", str(tmp_path), "--batch-size", "16"])
    )
    total = 7
    contexts = [
        SimpleNamespace(rank=rank, world_size=WORLD_SIZE, device=torch.device("cpu"))
        for rank in range(WORLD_SIZE)
    ]
    unbroken = []
    for ctx in contexts:
        loader = build_loader(config, ctx)
        assert loader.batches_per_epoch == 5
        stream = iter(loader)
        unbroken.append([next(stream)[0] for _ in range(total)])
    for ours, theirs in zip(unbroken[0], unbroken[1], strict=True):
        assert not torch.equal(ours, theirs), "both ranks read the same batch"
    for stop_after in (2, 5):
        loader = build_loader(config, contexts[0])
        stream = iter(loader)
        for _ in range(stop_after):
            next(stream)
        saved = loader.state_dict()  # only rank 0 writes the training state
        for ctx in contexts:
            restarted = build_loader(config, ctx)
            restarted.load_state_dict(saved)
            stream = iter(restarted)
            for step in range(stop_after, total):
                batch = next(stream)[0]
                assert torch.equal(batch, unbroken[ctx.rank][step]), (
                    f"rank {ctx.rank} batch {step} after stopping at {stop_after} differs"
                )

"""Two gloo processes give the table of one process (images sharded, sums all-reduced)."""

import json
import os
import socket
import subprocess
import sys

import pytest

from freqlat.eval import main

COLUMNS_MEASURED = ("Recon", "Low", "High", "PSNR", "SSIM")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_give_the_single_process_table(tmp_path):
    args = [
        "recon",
        "--tokenizer",
        "random:kl-vae-f16d16-tiny",
        "--data",
        "embedded",
        "--num-images",
        "7",
        "--image-size",
        "32",
        "--batch-size",
        "2",
        "--num-workers",
        "0",
    ]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        str(_free_port()),
        "-m",
        "freqlat.eval",
        *args,
        "--out",
        str(tmp_path / "two"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_HOME": str(tmp_path / "empty")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "recon.json").read_text())["rows"][0]
    two = json.loads((tmp_path / "two" / "recon.json").read_text())["rows"][0]
    assert two["num_images"] == one["num_images"] == 7
    # the tokenizer runs in float32 on other batch compositions: equal to float32 rounding
    for column in COLUMNS_MEASURED:
        assert two[column] == pytest.approx(one[column], rel=1e-6, abs=1e-6), column

"""The main job: the FA-VAE README's reconstruction table, end to end, on a CPU with no downloads.

Trains the ``-tiny`` versions of the four tokenizers (KL-VAE, MS-VQ-VAE, VA-VAE, FA-VAE) on the
photographs bundled with scikit-image (``freqlat.core``'s embedded dataset, train split), then
evaluates every one on the validation crops (``freqlat-eval recon``: Recon, Low, High, LPIPS,
rFID, PSNR, SSIM), writes a labelled reconstruction grid and the frequency-bias analysis
(band-error tables, radial power spectra), and prints the table. Each stage is the command a
researcher runs at paper scale, run here as a subprocess: ``freqlat-train``, ``freqlat-eval``,
``tools/recon_grid.py`` and ``tools/frequency_analysis.py``.

Runs are resumed, not repeated: running the job again reuses every finished training run.

    uv run --all-packages python tools/main_job.py [--out runs/main] [--steps 300]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
TRAIN = [sys.executable, "-m", "freqlat.train"]
EVAL = [sys.executable, "-m", "freqlat.eval"]
RECON_GRID = [sys.executable, str(TOOLS / "recon_grid.py")]
FREQUENCY_ANALYSIS = [sys.executable, str(TOOLS / "frequency_analysis.py")]

TOKENIZERS = {
    "KL-VAE": "kl-vae-f16d16-tiny",
    "MS-VQ-VAE": "ms-vq-vae-tiny",
    "VA-VAE": "va-vae-f16d32-tiny",
    "FA-VAE": "fa-vae-f16d64-tiny",
}
"""Table name -> preset. ``ms-vq-vae-tiny`` takes exactly 64 px, so every model runs at 64 px."""


def _run(stage: str, command: list[str], argv: list[str]) -> None:
    start = time.perf_counter()
    status = subprocess.run([*command, *argv], check=False).returncode
    if status != 0:
        raise SystemExit(f"main job: {stage} failed with status {status}")
    print(f"[main job] {stage}: {time.perf_counter() - start:.0f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Train, evaluate and analyse; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("runs/main"), help="output folder")
    parser.add_argument("--steps", type=int, default=300, help="training steps per tokenizer")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--num-images", type=int, default=62, help="validation images (62 = all)")
    parser.add_argument("--num-workers", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out
    run_dirs = {name: out / "train" / preset for name, preset in TOKENIZERS.items()}

    for name, preset in TOKENIZERS.items():
        _run(
            f"train {name} ({preset})",
            TRAIN,
            [
                "tokenizer",
                "--preset", preset,
                "--run-dir", str(run_dirs[name]),
                "--data", "embedded",
                "--image-size", str(args.image_size),
                "--steps", str(args.steps),
                "--batch-size", str(args.batch_size),
                "--disc-start", str(args.steps // 2),
                "--num-workers", str(args.num_workers),
                "--checkpoint-every", str(max(1, args.steps // 2)),
                "--grid-every", str(args.steps),
                "--log-every", str(max(1, args.steps // 5)),
            ],
        )  # fmt: skip

    specs = [str(run_dirs[name]) for name in TOKENIZERS]
    data = ["--data", "embedded", "--image-size", str(args.image_size)]
    _run(
        "evaluate",
        EVAL,
        ["recon", "--tokenizer", *specs, *data, "--num-images", str(args.num_images),
         "--num-workers", str(args.num_workers), "--out", str(out / "eval")],
    )  # fmt: skip
    _run(
        "reconstruction grid",
        RECON_GRID,
        ["--tokenizer", *specs, *data, "--num-images", "6", "--error-maps", "--labels",
         "--out", str(out / "grids" / "reconstructions.png")],
    )  # fmt: skip
    _run(
        "frequency analysis",
        FREQUENCY_ANALYSIS,
        ["--tokenizer", *specs, *data, "--num-images", str(args.num_images),
         "--out", str(out / "frequency")],
    )  # fmt: skip

    print("\nReconstruction table (tiny models, embedded validation crops):\n")
    print((out / "eval" / "recon.md").read_text())
    print(f"Outputs under {out}: eval/ (CSV, JSON, markdown), grids/, frequency/ (tables, plots),")
    print("train/<preset>/ (config.json, checkpoints, grids, tensorboard, export/).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

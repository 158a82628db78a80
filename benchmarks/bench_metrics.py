"""Benchmark: Inception feature throughput against torch-fidelity, and the rFID pipeline.

1. Inception features: ours (``freqlat.metrics.InceptionFeatures``) and torch-fidelity's
   ``FeatureExtractorInceptionV3`` load the *same* weights file and run on the same uint8 batch;
   reports images/s of each, the speed-up, and the parity of the pool features and logits.
2. The whole rFID pipeline on a folder of JPEGs: decode + centre crop (DataLoader workers), the
   transfer, Inception features, accumulation and FID, in images/s, with each stage timed alone so
   that the one that bounds the pipeline is named.

Without ``--weights`` both networks get the same random weights (timing does not depend on the
values, once CPU denormals are flushed; no FID from such a run means anything, and none is printed). Without ``--folder`` a
folder of JPEG crops of scikit-image's photographs is written to a temporary directory.

    uv run --all-packages python benchmarks/bench_metrics.py [--device cuda] [--batch 250] [--append benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from benchlib import device_name, emit, sync, throughput
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2 import functional as TF

from freqlat.metrics import FeatureStatistics, InceptionFeatures, frechet_distance


def images_per_second(fn, batch: int, device: torch.device, iters: int) -> float:
    """Throughput of ``fn`` (one call = ``batch`` images) without autograd, after one warm-up."""
    with torch.no_grad():
        return throughput(fn, batch, device, iters, warmup=1)


class JpegFolder(Dataset):
    """uint8 3 x size x size centre crops of every JPEG in a folder (shorter side resized)."""

    def __init__(self, root: Path, size: int) -> None:
        self.files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        if not self.files:
            raise FileNotFoundError(f"no .jpg/.jpeg files in {root}")
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = decode_image(read_file(str(self.files[index])), mode=ImageReadMode.RGB)
        image = TF.resize(image, self.size, antialias=True)
        return TF.center_crop(image, [self.size, self.size])


def write_demo_jpegs(root: Path, count: int, size: int) -> None:
    """``count`` JPEG crops of scikit-image's colour photographs."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(0)
    for i in range(count):
        photo = photos[i % len(photos)]
        top = rng.integers(0, photo.shape[0] - size + 1)
        left = rng.integers(0, photo.shape[1] - size + 1)
        crop = photo[top : top + size, left : left + size]
        Image.fromarray(crop).save(root / f"{i:05d}.jpg", quality=90)


def bench_inception(
    device, batch, iters, weights, dtype_note
) -> tuple[list[str], InceptionFeatures]:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with tempfile.TemporaryDirectory() as tmp:
        if weights is None:
            torch.manual_seed(0)
            ours = InceptionFeatures(pretrained=False)  # random: no file passes verification
            weights = Path(tmp) / "weights-inception-2015-12-05-6726825d.pth"
            torch.save(ours.state_dict(), weights)
        else:
            ours = InceptionFeatures(weights_path=weights)
        ours = ours.to(device)
        ref = FeatureExtractorInceptionV3(
            "inception-v3-compat",
            ["2048", "logits_unbiased"],
            feature_extractor_weights_path=str(weights),
        ).to(device)
    images = torch.randint(0, 256, (batch, 3, 256, 256), dtype=torch.uint8, device=device)
    with torch.no_grad():
        out = ours(images)
        ref_pool, ref_logits = ref(images)
    pool_err = ((out.pool - ref_pool).abs().max() / ref_pool.abs().max()).item()
    logit_err = ((out.logits - ref_logits).abs().max() / ref_logits.abs().max()).item()
    ours_ips = images_per_second(lambda: ours(images), batch, device, iters)
    ref_ips = images_per_second(lambda: ref(images), batch, device, iters)
    rows = [
        "| implementation | img/s | speed-up | max rel. diff (pool / logits) |",
        "| --- | --- | --- | --- |",
        f"| torch-fidelity FeatureExtractorInceptionV3 | {ref_ips:.0f} | 1.00x | |",
        f"| freqlat InceptionFeatures | {ours_ips:.0f} | {ours_ips / ref_ips:.2f}x | "
        f"{pool_err:.1e} / {logit_err:.1e} |",
        "",
        f"Input: {batch} x 3 x 256 x 256 uint8 (TF1 resize to 299 inside both), {dtype_note}.",
    ]
    return rows, ours


def bench_pipeline(device, extractor, folder: Path, batch: int, workers: int) -> list[str]:
    dataset = JpegFolder(folder, 256)
    loader = DataLoader(
        dataset, batch_size=batch, num_workers=workers, pin_memory=device.type == "cuda"
    )
    n = len(dataset)

    start = time.perf_counter()
    cached = list(loader)
    decode_ips = n / (time.perf_counter() - start)

    start = time.perf_counter()
    on_device = [b.to(device, non_blocking=True) for b in cached]
    sync(device)
    transfer_ips = n / (time.perf_counter() - start)

    with torch.no_grad():
        extractor(on_device[0])
        sync(device)
        start = time.perf_counter()
        for b in on_device:
            extractor(b)
        sync(device)
    feature_ips = n / (time.perf_counter() - start)

    start = time.perf_counter()
    first, second = FeatureStatistics(2048, device), FeatureStatistics(2048, device)
    with torch.no_grad():
        for i, b in enumerate(loader):
            pool = extractor(b.to(device, non_blocking=True)).pool
            (first if i % 2 == 0 else second).update(pool)
    if second.count >= 2:
        frechet_distance(*first.compute(), *second.compute())
    sync(device)
    total_ips = n / (time.perf_counter() - start)

    stages = {"decode + crop": decode_ips, "host-to-device": transfer_ips, "Inception": feature_ips}
    bound = min(stages, key=stages.get)
    return [
        "| stage | img/s |",
        "| --- | --- |",
        *(f"| {name} (alone) | {ips:.0f} |" for name, ips in stages.items()),
        f"| whole pipeline (decode -> features -> FID) | {total_ips:.0f} |",
        "",
        f"{n} JPEGs from {folder.name}/, batch {batch}, {workers} DataLoader workers. "
        f"Bound by: **{bound}** ({stages[bound]:.0f} img/s alone).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--weights", type=Path, default=None, help="FID Inception weights file")
    parser.add_argument("--folder", type=Path, default=None, help="folder of JPEGs for stage 2")
    parser.add_argument(
        "--num-images", type=int, default=2000, help="JPEGs to write without --folder"
    )
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--append", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    # Random weights shrink the activations into the denormal range, where CPU arithmetic is
    # many times slower; flushing them keeps the CPU timing about the network, not the values.
    torch.set_flush_denormal(True)
    name = device_name(device)
    note = "real weights" if args.weights else "identical random weights"
    lines = [
        f"### FID Inception on {name}",
        "",
        f"{datetime.date.today()}, torch {torch.__version__}, fp32, `benchmarks/bench_metrics.py`.",
        "",
    ]
    rows, extractor = bench_inception(device, args.batch, args.iters, args.weights, note)
    lines += [*rows, ""]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder
        if folder is None:
            folder = Path(tmp) / "jpegs"
            folder.mkdir()
            write_demo_jpegs(folder, args.num_images, 256)
        lines += bench_pipeline(device, extractor, folder, args.batch, args.workers)
    table = "\n".join(lines) + "\n"
    emit(table, args.append)


if __name__ == "__main__":
    main()

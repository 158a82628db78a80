"""Accumulators: batch-wise equals all-at-once, merge equals one stream, and 2-rank gloo equals 1 rank."""

import subprocess
import sys
import textwrap

import pytest
import torch

from freqlat.metrics import (
    FeatureBank,
    FeatureStatistics,
    ReconstructionMetrics,
    band_errors,
    feature_statistics,
    psnr,
    recon_mse,
    ssim,
)


def _data():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(40, 6, generator=g) * 2 + 1
    originals = torch.rand(8, 3, 16, 16, generator=g) * 2 - 1
    recons = (originals + 0.1 * torch.randn(originals.shape, generator=g)).clamp(-1, 1)
    return feats, originals, recons


def test_batched_statistics_equal_statistics_of_all_rows_and_merge_is_concatenation():
    feats, _, _ = _data()
    first, second = FeatureStatistics(6), FeatureStatistics(6)
    for chunk in feats[:25].split(7):
        first.update(chunk)
    second.update(feats[25:])
    first.merge(second)
    mu, sigma = first.compute()
    ref_mu, ref_sigma = feature_statistics(feats)
    torch.testing.assert_close(mu, ref_mu, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sigma, ref_sigma, rtol=1e-12, atol=1e-12)


def test_reconstruction_metrics_equal_the_functions_on_the_whole_set():
    _, originals, recons = _data()
    acc = ReconstructionMetrics()
    for x, y in zip(originals.split(3), recons.split(3), strict=True):
        acc.update(x, y)
    result = acc.compute()
    low, high = band_errors(originals, recons)
    assert result["recon"] == pytest.approx(float(recon_mse(originals, recons)), rel=1e-12)
    assert result["low"] == pytest.approx(float(low), rel=1e-12)
    assert result["high"] == pytest.approx(float(high), rel=1e-12)
    assert result["recon"] == pytest.approx((result["low"] + 3 * result["high"]) / 4, rel=1e-12)
    assert result["psnr"] == pytest.approx(
        float(psnr(originals, recons, data_range=2.0).mean()), rel=1e-12
    )
    assert result["ssim"] == pytest.approx(
        float(ssim(originals, recons, data_range=2.0).mean()), rel=1e-12
    )


def test_unclamped_reconstructions_need_check_range_off_and_keep_the_band_identity():
    _, originals, recons = _data()
    overshoot = recons * 1.3
    assert overshoot.abs().max() > 1
    with pytest.raises(ValueError, match="reconstructions must lie in"):
        ReconstructionMetrics().update(originals, overshoot)
    acc = ReconstructionMetrics(check_range=False)
    acc.update(originals, overshoot)
    result = acc.compute()
    assert result["recon"] == pytest.approx(
        float(recon_mse(originals, overshoot, check_range=False)), rel=1e-12
    )
    assert result["recon"] == pytest.approx((result["low"] + 3 * result["high"]) / 4, rel=1e-12)
    clamped = overshoot.clamp(-1, 1)
    assert result["psnr"] == pytest.approx(
        float(psnr(originals, clamped, data_range=2.0).mean()), rel=1e-12
    )
    assert result["ssim"] == pytest.approx(
        float(ssim(originals, clamped, data_range=2.0).mean()), rel=1e-12
    )
    with pytest.raises(ValueError, match="originals must lie in"):
        acc.update(overshoot, originals)


def test_accumulators_reject_bad_input():
    with pytest.raises(ValueError, match="at least 2 samples"):
        stats = FeatureStatistics(3)
        stats.update(torch.zeros(1, 3))
        stats.compute()
    with pytest.raises(ValueError, match="3 columns"):
        FeatureStatistics(3).update(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="empty"):
        FeatureBank().compute()
    with pytest.raises(ValueError, match="even"):
        ReconstructionMetrics().update(torch.zeros(1, 3, 15, 16), torch.zeros(1, 3, 15, 16))


WORKER = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    from freqlat.metrics import FeatureBank, FeatureStatistics, ReconstructionMetrics

    rank, world, init_file, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    data = torch.load(sys.argv[5])
    stats, bank, recon = FeatureStatistics(6), FeatureBank(), ReconstructionMetrics()
    # Uneven shards on purpose: rank 0 takes 25 rows and 5 images, rank 1 the rest.
    rows = slice(0, 25) if rank == 0 else slice(25, None)
    images = slice(0, 5) if rank == 0 else slice(5, None)
    stats.update(data["feats"][rows])
    bank.update(data["feats"][rows])
    recon.update(data["originals"][images], data["recons"][images])
    for acc in (stats, bank, recon):
        acc.all_reduce()
    mu, sigma = stats.compute()
    torch.save({"mu": mu, "sigma": sigma, "bank": bank.compute(), "recon": recon.compute()}, out)
    dist.destroy_process_group()
    """
)


def test_two_process_gloo_all_reduce_equals_one_process(tmp_path):
    feats, originals, recons = _data()
    torch.save({"feats": feats, "originals": originals, "recons": recons}, tmp_path / "data.pt")
    (tmp_path / "worker.py").write_text(WORKER)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "worker.py"),
                str(rank),
                "2",
                str(tmp_path / "init"),
                str(tmp_path / f"out{rank}.pt"),
                str(tmp_path / "data.pt"),
            ],
            stderr=subprocess.PIPE,
        )
        for rank in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()

    single_stats, single_recon = FeatureStatistics(6), ReconstructionMetrics()
    single_stats.update(feats)
    single_recon.update(originals, recons)
    mu, sigma = single_stats.compute()
    expected_recon = single_recon.compute()
    for rank in range(2):
        got = torch.load(tmp_path / f"out{rank}.pt")
        torch.testing.assert_close(got["mu"], mu, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(got["sigma"], sigma, rtol=1e-13, atol=1e-13)
        assert torch.equal(got["bank"], feats)
        for key, value in expected_recon.items():
            assert got["recon"][key] == pytest.approx(value, rel=1e-13)

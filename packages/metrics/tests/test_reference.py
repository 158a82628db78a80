"""Reference batches (ADM .npz), folder statistics with caching, and protocol-tagged results."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from freqlat.metrics import (
    InceptionFeatures,
    InceptionMetrics,
    ReferenceStatistics,
    feature_statistics,
    folder_statistics,
    frechet_distance,
    get_protocol,
    precision_recall,
    read_adm_npz,
    write_adm_npz,
)


def test_adm_npz_round_trip_uses_adm_key_names_and_nhwc(tmp_path, uint8_photos):
    rng = np.random.default_rng(0)
    stats = ReferenceStatistics(rng.normal(size=4), np.eye(4), rng.normal(size=3), np.eye(3) * 2)
    path = tmp_path / "ref.npz"
    write_adm_npz(path, uint8_photos, stats)
    with np.load(path) as raw:
        assert sorted(raw.keys()) == ["arr_0", "mu", "mu_s", "sigma", "sigma_s"]
        assert raw["arr_0"].shape == (4, 64, 64, 3) and raw["arr_0"].dtype == np.uint8
    samples, loaded = read_adm_npz(path)
    assert torch.equal(samples, uint8_photos)
    for name in ("mu", "sigma", "mu_s", "sigma_s"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(stats, name))


def test_metrics_equal_the_functions_on_extracted_features_and_record_the_protocol(
    inception_extractor, uint8_photos, degraded
):
    extractor = inception_extractor
    real = InceptionMetrics(extractor, "rfid-fa-vae")
    fake = InceptionMetrics(extractor, "rfid-fa-vae")
    real.update(uint8_photos)
    fake.update(degraded)  # float [-1, 1]: rounded to uint8 first
    result = fake.compute(real)
    assert result["protocol"] == "rfid-fa-vae" and result["num_samples"] == 4
    # The banks hold exactly the features the extractor produced for each set.
    pool_real, pool_fake = real.pool_bank.compute(), fake.pool_bank.compute()
    expected = frechet_distance(*feature_statistics(pool_fake), *feature_statistics(pool_real))
    assert result["fid"] == pytest.approx(expected, rel=1e-9)
    expected_pr = precision_recall(pool_real, pool_fake)
    assert (result["precision"], result["recall"]) == (expected_pr.precision, expected_pr.recall)
    assert result["sfid"] > 0
    assert abs(fake.compute(fake)["sfid"]) < 1e-9
    assert result["inception_score"] is None  # torch-fidelity's 10 splits need 10 samples


def test_folder_statistics_match_in_memory_statistics_and_are_cached(
    tmp_path, inception_extractor, uint8_photos, monkeypatch
):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(uint8_photos[:2]):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    extractor = inception_extractor
    stats = folder_statistics(
        folder, extractor, "gfid-adm", batch_size=2, cache_dir=tmp_path / "cache"
    )
    direct = InceptionMetrics(extractor, "gfid-adm", keep_features=False)
    direct.update(uint8_photos[:2])
    np.testing.assert_allclose(stats.mu, direct.statistics().mu, rtol=1e-6, atol=1e-7)
    assert len(list((tmp_path / "cache").glob("gfid-adm-*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(InceptionFeatures, "forward", fail)
    cached = folder_statistics(folder, extractor, "gfid-adm", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(cached.sigma_s, stats.sigma_s)


def test_protocols_are_checked_by_name_and_preprocessing(inception_extractor):
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol("fid")
    assert get_protocol("gfid-adm").inception_score_mode == "adm"
    with pytest.raises(ValueError, match="pytorch-fid"):
        InceptionMetrics(inception_extractor, "rfid-lightningdit")


def test_the_former_rfid_protocol_name_is_an_alias_that_says_so():
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("freqlat.metrics.reference")
    logger.addHandler(handler)  # directly: an app may have stopped "freqlat" propagating
    try:
        protocol = get_protocol("rfid-seed")
    finally:
        logger.removeHandler(handler)
    assert protocol is get_protocol("rfid-fa-vae")
    assert [r.getMessage() for r in records] == [
        "protocol 'rfid-seed' is an alias of 'rfid-fa-vae', kept for one release"
    ]

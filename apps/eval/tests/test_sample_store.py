"""Sample shards on disk: atomic shards, the ADM-layout npz they assemble into, and resume."""

import zipfile

import numpy as np
import pytest

from freqlat.eval.sample_store import SampleStore, adm_images, npz_array_shape
from freqlat.metrics import read_adm_npz

MANIFEST = {"num_samples": 7, "shard_size": 3, "seed": 0}


def _samples(count=7, size=5):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8), np.arange(count) * 3


def test_shards_assemble_into_an_adm_npz_that_numpy_and_read_adm_npz_read_back(tmp_path):
    images, labels = _samples()
    store = SampleStore(tmp_path / "cell", MANIFEST)
    store.open()
    assert store.num_shards == 3 and store.shard_range(2) == (6, 7)
    assert store.pending_shards() == [0, 1, 2]
    for shard in (2, 0, 1):  # any order, as ranks finish them
        start, stop = store.shard_range(shard)
        store.write_shard(shard, images[start:stop], labels[start:stop])
    assert store.pending_shards() == []
    path = store.assemble()
    assert sorted(p.name for p in (tmp_path / "cell" / "shards").iterdir()) == []
    with np.load(path) as data:  # what guided-diffusion's evaluator and np.load see
        assert data["arr_0"].dtype == np.uint8 and data["arr_0"].shape == (7, 5, 5, 3)
        np.testing.assert_array_equal(data["arr_0"], images)
        np.testing.assert_array_equal(data["arr_1"], labels)
    with zipfile.ZipFile(path) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
    samples, _ = read_adm_npz(path)
    np.testing.assert_array_equal(samples.permute(0, 2, 3, 1).numpy(), images)
    block, block_labels = store.read(2, 6)
    np.testing.assert_array_equal(block, images[2:6])
    np.testing.assert_array_equal(block_labels, labels[2:6])
    assert npz_array_shape(path) == (7, 5, 5, 3) and npz_array_shape(path, "mu") is None
    assert store.complete and store.pending_shards() == []


def test_a_memory_map_reads_numpys_own_npz_files(tmp_path):
    images, _ = _samples(4)
    np.savez(tmp_path / "plain.npz", arr_0=images)
    np.testing.assert_array_equal(adm_images(tmp_path / "plain.npz"), images)
    np.savez_compressed(tmp_path / "packed.npz", arr_0=images)
    with pytest.raises(ValueError, match="compressed"):
        adm_images(tmp_path / "packed.npz")


def test_a_folder_of_other_settings_is_refused_and_bad_shards_too(tmp_path):
    images, labels = _samples()
    store = SampleStore(tmp_path / "cell", MANIFEST)
    store.open()
    store.write_shard(0, images[:3], labels[:3])
    with pytest.raises(ValueError, match=r"other settings \(keys \['seed'\]\)"):
        SampleStore(tmp_path / "cell", {**MANIFEST, "seed": 1}).open()
    with pytest.raises(ValueError, match="3 images and labels"):
        store.write_shard(1, images[:2], labels[:2])
    with pytest.raises(ValueError, match="N x H x W x 3 uint8"):
        store.write_shard(1, images[:3].astype(np.float32), labels[:3])
    with pytest.raises(ValueError, match=r"shards \[1, 2\] are missing"):
        store.assemble()
    # an interrupted write leaves only a temporary file: the shard is still pending
    (tmp_path / "cell" / "shards" / ".shard-000001.npz.tmp").write_bytes(b"partial")
    assert SampleStore(tmp_path / "cell", MANIFEST).pending_shards() == [1, 2]

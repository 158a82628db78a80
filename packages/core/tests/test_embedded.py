"""The embedded scikit-image photographs: disjoint splits, deterministic crops, item format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from freqlat.core.data import ImageFolderDataset
from freqlat.core.embedded import SOURCE_PHOTOS, EmbeddedPhotos, cut_crops, open_dataset


@pytest.fixture(scope="module")
def splits() -> tuple[EmbeddedPhotos, EmbeddedPhotos]:
    return EmbeddedPhotos("train", 32, scales=(1, 2)), EmbeddedPhotos("val", 32, scales=(1, 2))


def test_no_photograph_is_in_both_splits(splits):
    train, val = splits
    train_sources = {box.source for box in train.boxes}
    val_sources = {box.source for box in val.boxes}
    assert train_sources and val_sources
    assert not train_sources & val_sources
    assert train_sources | val_sources == {p.name for p in SOURCE_PHOTOS}


def test_the_stereo_pair_stays_in_one_split():
    splits = {p.name: p.split for p in SOURCE_PHOTOS}
    assert splits["motorcycle_left"] == splits["motorcycle_right"]


def test_crops_are_deterministic(splits):
    train, _ = splits
    again = EmbeddedPhotos("train", 32, scales=(1, 2))
    assert again.boxes == train.boxes
    np.testing.assert_array_equal(again.crops, train.crops)


def test_items_match_the_folder_dataset_format(splits, class_folder: Path):
    train, _ = splits
    image, label = train[(0, True)]
    folder_image, folder_label = ImageFolderDataset(class_folder, 32)[0]
    assert image.shape == folder_image.shape and image.dtype == folder_image.dtype
    assert isinstance(label, int) and isinstance(folder_label, int)
    assert image.min() >= -1 and image.max() <= 1
    assert torch.equal(image, train[0][0].flip(-1))


def test_scale_one_crop_is_the_adm_center_crop_and_grids_tile_without_overlap():
    photo = np.random.default_rng(0).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    crops = cut_crops(photo, 32, scales=(1, 2, 4))
    scales = [c[0] for c in crops]
    # Scale 4 would need a shorter side of 128 > 100 and is skipped.
    assert scales == [1] + [2] * 6
    _, top, left, _ = crops[0]
    assert (top, left) == (0, (48 - 32) // 2)
    boxes = {(top, left) for scale, top, left, _ in crops if scale == 2}
    assert boxes == {(top, left) for top in (0, 32) for left in (0, 32, 64)}


def test_open_dataset_picks_embedded_imagenet_or_plain_folder(imagenet_root, class_folder):
    assert isinstance(open_dataset("embedded", "val", 16), EmbeddedPhotos)
    val = open_dataset(imagenet_root, "val", 16)
    assert isinstance(val, ImageFolderDataset) and val.root == imagenet_root / "val"
    assert open_dataset(class_folder, "train", 16).root == class_folder
    with pytest.raises(FileNotFoundError, match="missing"):
        open_dataset(class_folder / "missing", "train", 16)

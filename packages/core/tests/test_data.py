"""Folder datasets, ADM preprocessing, colour-mode conversion and bad-file handling."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from freqlat.core.data import (
    BadImageError,
    ImageFolderDataset,
    adm_center_crop,
    imagenet_split,
    load_rgb,
    resize_center_crop,
    to_model_tensor,
)


def _random_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_adm_crop_halves_with_box_then_finishes_with_bicubic_and_crops_the_centre():
    image = _random_rgb(300, 200)
    # 200 >= 2 * 64, so one BOX halving to 150 x 100; then BICUBIC by 64/100 to 96 x 64;
    # then the central 64 columns start at (96 - 64) // 2 = 16.
    expected = image.resize((150, 100), Image.BOX).resize((96, 64), Image.BICUBIC)
    expected = np.asarray(expected)[:, 16:80]
    np.testing.assert_array_equal(adm_center_crop(image, 64), expected)


def test_adm_crop_rounds_the_longer_side_and_floors_the_offset():
    image = _random_rgb(65, 70, seed=1)
    # No halving (65 < 128); scale 64/65 gives 64 x round(68.92) = 69 rows; top = (69-64)//2 = 2.
    expected = np.asarray(image.resize((64, 69), Image.BICUBIC))[2:66]
    np.testing.assert_array_equal(adm_center_crop(image, 64), expected)


@pytest.mark.parametrize(
    "width, height, size",
    [(300, 200, 64), (200, 300, 64), (65, 70, 64), (64, 90, 64), (101, 57, 32), (333, 500, 256)],
)
def test_resize_center_crop_equals_torchvision_resize_then_center_crop(width, height, size):
    transforms = pytest.importorskip("torchvision.transforms")
    image = _random_rgb(width, height, seed=width + height)
    expected = transforms.CenterCrop(size)(transforms.Resize(size)(image))
    np.testing.assert_array_equal(resize_center_crop(image, size), np.asarray(expected))


def test_resize_center_crop_dataset_matches_the_seed_evaluation_transform(class_folder: Path):
    transforms = pytest.importorskip("torchvision.transforms")
    seed_transform = transforms.Compose(
        [
            transforms.Resize(32),
            transforms.CenterCrop((32, 32)),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
        ]
    )
    dataset = ImageFolderDataset(class_folder, 32, crop="resize-center")
    for index, (path, _) in enumerate(dataset.samples):
        image, _ = dataset[index]
        expected = seed_transform(load_rgb(path))
        torch.testing.assert_close(image, expected, rtol=0, atol=1e-6)


def test_unknown_crop_is_a_clear_error(class_folder: Path):
    with pytest.raises(ValueError, match=r"unknown crop .random.*adm"):
        ImageFolderDataset(class_folder, 32, crop="random")


def test_model_tensor_maps_0_and_255_to_minus_one_and_one_and_flips_columns():
    array = np.zeros((2, 3, 3), dtype=np.uint8)
    array[:, 0] = 255
    tensor = to_model_tensor(array)
    assert tensor.shape == (3, 2, 3) and tensor.dtype == torch.float32
    assert tensor[:, :, 0].eq(1).all() and tensor[:, :, 1:].eq(-1).all()
    flipped = to_model_tensor(array, flip=True)
    assert torch.equal(flipped, tensor.flip(-1))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA"])
def test_non_rgb_images_load_as_rgb(tmp_path: Path, mode: str):
    rgb = _random_rgb(24, 20, seed=3)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = tmp_path / f"image_{mode}{suffix}"
    rgb.convert(mode).save(path)
    loaded = load_rgb(path)
    assert loaded.mode == "RGB" and loaded.size == (24, 20)


def test_cmyk_jpeg_colours_survive_conversion(tmp_path: Path):
    flat = Image.new("RGB", (32, 32), (200, 40, 90))
    path = tmp_path / "cmyk.jpg"
    flat.convert("CMYK").save(path, quality=95)
    pixels = np.asarray(load_rgb(path)).reshape(-1, 3).mean(0)
    np.testing.assert_allclose(pixels, [200, 40, 90], atol=6)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path: Path):
    path = tmp_path / "depth.png"
    Image.fromarray(np.full((8, 8), 65535 // 2, dtype=np.uint16)).save(path)
    pixels = np.asarray(load_rgb(path))
    assert pixels.shape == (8, 8, 3)
    assert abs(int(pixels[0, 0, 0]) - 127) <= 1


def _truncated_jpeg(path: Path) -> Path:
    buffer = io.BytesIO()
    _random_rgb(64, 64).save(buffer, format="JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def test_truncated_jpeg_is_an_error_naming_the_file(tmp_path: Path):
    path = _truncated_jpeg(tmp_path / "broken.JPEG")
    with pytest.raises(BadImageError, match=r"broken\.JPEG"):
        load_rgb(path)


def test_garbage_file_is_an_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "garbage.jpg"
    path.write_bytes(b"this is not a JPEG at all")
    with pytest.raises(BadImageError, match=r"garbage\.jpg"):
        load_rgb(path)


def test_class_folders_become_sorted_labels(class_folder: Path):
    dataset = ImageFolderDataset(class_folder, 32)
    assert dataset.labeled and dataset.classes == ["n01", "n02"]
    assert len(dataset) == 6  # notes.txt is ignored
    assert [label for _, label in dataset.samples] == [0, 0, 0, 1, 1, 1]
    image, label = dataset[4]
    assert image.shape == (3, 32, 32) and label == 1
    assert image.min() >= -1 and image.max() <= 1


def test_flip_key_mirrors_the_same_image(class_folder: Path):
    dataset = ImageFolderDataset(class_folder, 32)
    plain, _ = dataset[2]
    flipped, _ = dataset[(2, True)]
    assert torch.equal(flipped, plain.flip(-1))


def test_loose_images_form_one_unlabeled_class(tmp_path: Path, make_image):
    for i in range(3):
        make_image(tmp_path / "flat" / f"{i}.png", (20, 20), seed=i)
    dataset = ImageFolderDataset(tmp_path / "flat", 16)
    assert not dataset.labeled and dataset.num_classes == 1
    assert {label for _, label in dataset.samples} == {0}


def test_images_beside_class_folders_are_rejected(class_folder: Path, make_image):
    make_image(class_folder / "stray.png", (20, 20), seed=0)
    with pytest.raises(ValueError, match="both images and class folders"):
        ImageFolderDataset(class_folder, 16)


def test_missing_data_root_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataset(tmp_path / "nowhere", 16)


def test_folder_without_images_is_rejected(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        ImageFolderDataset(tmp_path / "empty", 16)


def test_bad_image_raises_by_default(class_folder: Path):
    _truncated_jpeg(class_folder / "n01" / "img1.png")
    dataset = ImageFolderDataset(class_folder, 16)
    with pytest.raises(BadImageError, match=r"img1\.png"):
        dataset[1]


def test_skip_bad_images_substitutes_the_next_image_and_counts(class_folder: Path, caplog):
    _truncated_jpeg(class_folder / "n01" / "img1.png")
    dataset = ImageFolderDataset(class_folder, 16, skip_bad_images=True)
    with caplog.at_level(logging.WARNING, logger="freqlat.core.data"):
        image, label = dataset[1]
        dataset[1]
    assert torch.equal(image, dataset[2][0])
    assert label == 0
    assert dataset.num_skipped == 1
    assert sum("img1.png" in r.getMessage() for r in caplog.records) == 1


def test_imagenet_layout_reads_both_splits(imagenet_root: Path):
    train = imagenet_split(imagenet_root, "train", 32)
    val = imagenet_split(imagenet_root, "val", 32)
    assert train.classes == val.classes == ["n01440764", "n01443537"]
    assert (len(train), len(val)) == (6, 2)


def test_imagenet_layout_errors_name_what_is_missing(tmp_path: Path, imagenet_root: Path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        imagenet_split(tmp_path / "nowhere", "train", 32)
    with pytest.raises(ValueError, match="'test'"):
        imagenet_split(imagenet_root, "test", 32)
    for path in (imagenet_root / "val").rglob("*.JPEG"):
        path.rename(imagenet_root / "val" / path.name)
    with pytest.raises(ValueError, match="class folders"):
        imagenet_split(imagenet_root, "val", 32)

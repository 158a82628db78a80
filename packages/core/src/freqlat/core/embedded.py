"""The embedded default dataset: scikit-image's bundled colour photographs cut into crops.

scikit-image ships a handful of real colour photographs inside its wheel (no download needed).
They are split by *source photograph* into a training and a validation set, so no photograph
contributes crops to both; the stereo pair ``motorcycle_left`` / ``motorcycle_right`` shows the
same scene and is kept together. Each photograph is resized (the ADM way) so that its shorter
side is ``scale * image_size`` for every scale in ``scales`` that does not upsample beyond the
photograph (scale 1 is always used), and each resized image is tiled into a centred grid of
non-overlapping ``image_size`` squares. The crops are a pure function of the arguments.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from freqlat.core.data import (
    DatasetKey,
    ImageFolderDataset,
    adm_resize_shorter_side,
    check_crop,
    imagenet_split,
    load_rgb,
    split_key,
    to_model_tensor,
)


@dataclass(frozen=True)
class SourcePhoto:
    """One bundled photograph: its name, its file in ``skimage/data``, and its split."""

    name: str
    filename: str
    split: str


SOURCE_PHOTOS: tuple[SourcePhoto, ...] = (
    SourcePhoto("astronaut", "astronaut.png", "train"),
    SourcePhoto("hubble_deep_field", "hubble_deep_field.jpg", "train"),
    SourcePhoto("immunohistochemistry", "ihc.png", "train"),
    SourcePhoto("motorcycle_left", "motorcycle_left.png", "train"),
    SourcePhoto("motorcycle_right", "motorcycle_right.png", "train"),
    SourcePhoto("retina", "retina.jpg", "train"),
    SourcePhoto("rocket", "rocket.jpg", "train"),
    SourcePhoto("chelsea", "chelsea.png", "val"),
    SourcePhoto("coffee", "coffee.png", "val"),
)
"""The colour photographs bundled in scikit-image's wheel and the split each belongs to."""

DEFAULT_SCALES: tuple[int, ...] = (1, 2, 4)
"""Shorter-side multiples of the crop size at which each photograph is tiled."""


def skimage_data_dir() -> Path:
    """The folder inside the installed scikit-image that holds its bundled images."""
    import skimage.data

    return Path(skimage.data.__file__).parent


@dataclass(frozen=True)
class CropBox:
    """Where a crop comes from: photograph, shorter-side scale, and top-left corner."""

    source: str
    scale: int
    top: int
    left: int


def cut_crops(
    photo: np.ndarray, image_size: int, scales: Sequence[int]
) -> list[tuple[int, int, int, np.ndarray]]:
    """Tile one H x W x 3 uint8 photograph into ``image_size`` squares at each usable scale.

    Returns ``(scale, top, left, crop)`` tuples, scales in the given order, crops row-major.
    """
    image = Image.fromarray(photo)
    crops = []
    for scale in scales:
        if scale < 1:
            raise ValueError(f"scales must be positive integers, got {scale}")
        if scale > 1 and scale * image_size > min(image.size):
            continue
        resized = np.asarray(adm_resize_shorter_side(image, scale * image_size))
        rows, cols = resized.shape[0] // image_size, resized.shape[1] // image_size
        top0 = (resized.shape[0] - rows * image_size) // 2
        left0 = (resized.shape[1] - cols * image_size) // 2
        for row in range(rows):
            for col in range(cols):
                top, left = top0 + row * image_size, left0 + col * image_size
                crop = resized[top : top + image_size, left : left + image_size]
                crops.append((scale, top, left, np.ascontiguousarray(crop)))
    return crops


class EmbeddedPhotos(Dataset):
    """Training or validation crops of scikit-image's bundled colour photographs.

    Items have the same format as :class:`freqlat.core.data.ImageFolderDataset`: ``(image, 0)``
    with a 3 x S x S float tensor in [-1, 1] (one unlabeled class); a key ``(index, flip)``
    mirrors the crop. :attr:`boxes` says where each crop was cut from.
    """

    def __init__(
        self,
        split: str,
        image_size: int = 64,
        *,
        scales: Sequence[int] = DEFAULT_SCALES,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.split = split
        self.image_size = int(image_size)
        self.scales = tuple(int(s) for s in scales)
        self.labeled = False
        self.classes: list[str] = []
        folder = Path(data_dir) if data_dir is not None else skimage_data_dir()
        self.sources = [p.name for p in SOURCE_PHOTOS if p.split == split]
        self.boxes: list[CropBox] = []
        crops: list[np.ndarray] = []
        for photo in SOURCE_PHOTOS:
            if photo.split != split:
                continue
            path = folder / photo.filename
            if not path.is_file():
                raise FileNotFoundError(
                    f"bundled photograph {photo.filename} not found in {folder}; the embedded "
                    "dataset needs scikit-image's wheel with its data files (scikit-image>=0.22)"
                )
            array = np.asarray(load_rgb(path))
            for scale, top, left, crop in cut_crops(array, self.image_size, self.scales):
                self.boxes.append(CropBox(photo.name, scale, top, left))
                crops.append(crop)
        self.crops = np.stack(crops)

    @property
    def num_classes(self) -> int:
        """Always 1: the embedded crops form one unlabeled class."""
        return 1

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, key: DatasetKey) -> tuple[torch.Tensor, int]:
        index, flip = split_key(key)
        if not 0 <= index < len(self.crops):
            raise IndexError(f"index {index} out of range for {len(self.crops)} crops")
        return to_model_tensor(self.crops[index], flip), 0


EMBEDDED = "embedded"
"""The data name that selects :class:`EmbeddedPhotos` in :func:`open_dataset`."""


def open_dataset(
    data: str | os.PathLike[str],
    split: str,
    image_size: int,
    *,
    skip_bad_images: bool = False,
    crop: str = "adm",
) -> Dataset:
    """Open the dataset the apps' ``--data`` option names.

    ``"embedded"`` gives :class:`EmbeddedPhotos` (already square crops, so ``crop`` does not
    apply); a folder with a ``<split>`` subfolder is read as the ImageNet layout
    (``root/<split>/<wnid>/*``); any other folder is read as a whole with
    :class:`ImageFolderDataset`, whatever the split. ``crop`` names an entry of
    :data:`freqlat.core.data.CROPS`.
    """
    check_crop(crop)
    if str(data) == EMBEDDED:
        return EmbeddedPhotos(split, image_size)
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist or is not a directory")
    if (root / split).is_dir():
        return imagenet_split(root, split, image_size, skip_bad_images=skip_bad_images, crop=crop)
    return ImageFolderDataset(root, image_size, skip_bad_images=skip_bad_images, crop=crop)

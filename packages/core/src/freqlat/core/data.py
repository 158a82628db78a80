"""Image datasets: the ImageNet folder layout, any folder of images, and the ADM preprocessing.

Every dataset here returns items ``(image, label)``: ``image`` is a float32 tensor of shape
3 x S x S with values in [-1, 1], ``label`` an int. Items are addressed by a *key*: either a
plain index (no augmentation) or a pair ``(index, flip)`` in which ``flip`` says whether the
image is mirrored left-right. Augmentation is thus decided by whoever draws the keys (see
:class:`freqlat.core.sampler.ResumableSampler`), never by hidden random state inside the dataset,
so that a resumed run replays exactly the same augmented samples.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
)
"""File name endings (case-insensitive) that the folder datasets treat as images."""

DatasetKey = int | tuple[int, bool]
"""How a dataset item is addressed: an index, or ``(index, flip)``."""


class BadImageError(ValueError):
    """An image file exists but cannot be decoded; the message names the file."""


def to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` as an 8-bit RGB image.

    Grayscale, palette, CMYK, YCbCr and RGBA images go through PIL's own conversion (alpha is
    dropped, as guided-diffusion's loader does); 16- and 32-bit integer grayscale is scaled from
    its 16-bit range to 8 bits instead of being clipped.
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64)
        scaled = np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Decode the image file at ``path`` fully and return it as RGB.

    Raises FileNotFoundError for a missing file and :class:`BadImageError` (naming the file) for
    a file that cannot be decoded, including truncated files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImageError(f"cannot decode image file {path}: {exc}") from exc


def adm_resize_shorter_side(image: Image.Image, target: int) -> Image.Image:
    """Resize so that the shorter side is ``target`` pixels, the way ADM does it.

    While the shorter side is at least twice ``target``, the image is halved with a BOX filter
    (each side floor-divided by 2); the remainder of the scale is done in one BICUBIC resize with
    both sides rounded. This is guided-diffusion's ``center_crop_arr`` without the crop.
    """
    if target < 1:
        raise ValueError(f"target size must be positive, got {target}")
    while min(image.size) >= 2 * target:
        image = image.resize(tuple(side // 2 for side in image.size), resample=Image.BOX)
    scale = target / min(image.size)
    return image.resize(tuple(round(side * scale) for side in image.size), resample=Image.BICUBIC)


def adm_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """ADM center crop: resize the shorter side to ``size``, then cut the central square.

    Returns an H x W x 3 uint8 array with H = W = ``size``; the crop offset is floor-centred.
    """
    array = np.asarray(adm_resize_shorter_side(to_rgb(image), size))
    top = (array.shape[0] - size) // 2
    left = (array.shape[1] - size) // 2
    return array[top : top + size, left : left + size]


def resize_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """torchvision's ``Resize(size)`` then ``CenterCrop(size)`` on a PIL image, without torchvision.

    The shorter side becomes ``size`` and the longer one ``int(size * long / short)`` (truncated),
    in one PIL BILINEAR resize; the crop offsets are ``round((side - size) / 2)``. This is
    the preprocessing of the FA-VAE author's evaluation scripts (and of upstream LightningDiT's,
    which resizes the float tensor instead of the PIL image). Returns an S x S x 3 uint8 array.
    """
    if size < 1:
        raise ValueError(f"crop size must be positive, got {size}")
    image = to_rgb(image)
    width, height = image.size
    short, long = min(width, height), max(width, height)
    if short != size:
        long_new = int(size * long / short)
        new_size = (size, long_new) if width <= height else (long_new, size)
        image = image.resize(new_size, resample=Image.BILINEAR)
    array = np.asarray(image)
    top = round((array.shape[0] - size) / 2.0)
    left = round((array.shape[1] - size) / 2.0)
    return array[top : top + size, left : left + size]


CROPS = {"adm": adm_center_crop, "resize-center": resize_center_crop}
"""Ways to cut an S x S square from an image, by name: ``adm`` (guided-diffusion's center crop,
the training default) and ``resize-center`` (torchvision's Resize + CenterCrop)."""


def check_crop(crop: str) -> str:
    """Return ``crop`` if it names an entry of :data:`CROPS`, else raise a ValueError."""
    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; known: {sorted(CROPS)}")
    return crop


def to_model_tensor(array: np.ndarray, flip: bool = False) -> torch.Tensor:
    """Turn an H x W x 3 uint8 array into a 3 x H x W float32 tensor in [-1, 1].

    ``flip`` mirrors the image left-right. The mapping is ``x / 127.5 - 1`` (as in ADM).
    """
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 array, got {array.shape} {array.dtype}")
    if flip:
        array = array[:, ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(array).transpose(2, 0, 1).copy())
    return tensor.to(torch.float32) / 127.5 - 1.0


def split_key(key: DatasetKey) -> tuple[int, bool]:
    """Split a dataset key into ``(index, flip)``; a plain index means no flip."""
    if isinstance(key, tuple | list):
        index, flip = key
        return int(index), bool(flip)
    return int(key), False


def _is_image_file(name: str, extensions: Sequence[str]) -> bool:
    return not name.startswith(".") and name.lower().endswith(tuple(extensions))


def _images_below(directory: Path, extensions: Sequence[str]) -> list[str]:
    """All image files under ``directory`` (recursively), in sorted, platform-independent order."""
    found: list[str] = []
    for current, subdirs, files in os.walk(directory, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        images = [f for f in sorted(files) if _is_image_file(f, extensions)]
        found.extend(os.path.join(current, f) for f in images)
    return found


class ImageFolderDataset(Dataset):
    """A folder of images, with classes from subfolders or as one unlabeled class.

    Layouts:
      * ``root/<class>/**/<image>``: every non-hidden subfolder holding images is a class,
        classes sorted by name and numbered from 0 (the ImageNet ``<split>/<wnid>`` layout);
      * ``root/<image>``: images directly in ``root`` form one unlabeled class (label 0).
    A root with both loose images and class folders is rejected as ambiguous.

    Each item is ``(image, label)``: the image cut to ``image_size`` by ``crop`` (a key of
    :data:`CROPS`, default the ADM center crop), as a 3 x S x S float tensor in [-1, 1]. With ``skip_bad_images`` an undecodable file is logged, counted in
    :attr:`num_skipped` (per process), and replaced by the next decodable image in file order;
    without it, it raises :class:`BadImageError` naming the file.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_size: int,
        *,
        skip_bad_images: bool = False,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        crop: str = "adm",
    ) -> None:
        self.root = Path(root)
        self.crop = check_crop(crop)
        if not self.root.is_dir():
            raise FileNotFoundError(f"data root {self.root} does not exist or is not a directory")
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = int(image_size)
        self.skip_bad_images = skip_bad_images
        self.skipped_files: set[str] = set()

        entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        loose = [e.path for e in entries if e.is_file() and _is_image_file(e.name, extensions)]
        class_images = {
            e.name: _images_below(Path(e.path), extensions)
            for e in entries
            if e.is_dir() and not e.name.startswith(".")
        }
        class_images = {name: images for name, images in class_images.items() if images}
        if loose and class_images:
            raise ValueError(
                f"{self.root} holds both images and class folders ({len(loose)} images, "
                f"{len(class_images)} folders); put every image into a class folder or none"
            )
        self.labeled = bool(class_images)
        if class_images:
            self.classes: list[str] = list(class_images)
            self.samples: list[tuple[str, int]] = [
                (path, label)
                for label, images in enumerate(class_images.values())
                for path in images
            ]
        else:
            self.classes = []
            self.samples = [(path, 0) for path in loose]
        if not self.samples:
            raise ValueError(
                f"no image files ({', '.join(extensions)}) found in {self.root} or its subfolders"
            )

    @property
    def num_classes(self) -> int:
        """Number of classes (1 for an unlabeled folder)."""
        return max(1, len(self.classes))

    @property
    def num_skipped(self) -> int:
        """How many distinct undecodable files this process has skipped so far."""
        return len(self.skipped_files)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: DatasetKey) -> tuple[torch.Tensor, int]:
        index, flip = split_key(key)
        if not 0 <= index < len(self.samples):
            raise IndexError(f"index {index} out of range for {len(self.samples)} images")
        for offset in range(len(self.samples)):
            path, label = self.samples[(index + offset) % len(self.samples)]
            try:
                image = load_rgb(path)
            except BadImageError as exc:
                if not self.skip_bad_images:
                    raise
                self._record_skip(path, exc)
                continue
            return to_model_tensor(CROPS[self.crop](image, self.image_size), flip), label
        raise BadImageError(f"none of the {len(self.samples)} images in {self.root} can be decoded")

    def _record_skip(self, path: str, error: BadImageError) -> None:
        if path not in self.skipped_files:
            self.skipped_files.add(path)
            logger.warning(
                "skipping undecodable image (%d skipped so far in this process): %s",
                len(self.skipped_files),
                error,
            )


def imagenet_split(
    root: str | os.PathLike[str],
    split: str,
    image_size: int,
    *,
    skip_bad_images: bool = False,
    crop: str = "adm",
) -> ImageFolderDataset:
    """One split of the ImageNet folder layout, ``root/<split>/<wnid>/*.JPEG``.

    ``split`` is ``"train"`` or ``"val"``; the validation images must already be sorted into
    class folders (ADM and torchvision expect the same).
    """
    if split not in ("train", "val"):
        raise ValueError(f"ImageNet split must be 'train' or 'val', got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ImageNet root {root} does not exist or is not a directory")
    split_dir = root / split
    if not split_dir.is_dir():
        raise FileNotFoundError(
            f"ImageNet split folder {split_dir} not found; expected {root}/{split}/<wnid>/*.JPEG"
        )
    dataset = ImageFolderDataset(split_dir, image_size, skip_bad_images=skip_bad_images, crop=crop)
    if not dataset.labeled:
        raise ValueError(
            f"{split_dir} holds images directly; sort them into <wnid> class folders first"
        )
    return dataset

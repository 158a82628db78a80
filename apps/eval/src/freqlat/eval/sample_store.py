"""Generated samples on disk: resumable shards, then one ADM-layout ``samples.npz``.

A :class:`SampleStore` is the folder of one (generator, sampler setting). Its ``samples.json``
records everything that decides the images (generator and tokenizer weights, seed, sampler,
labels, uint8 conversion, number of samples, shard size); a folder made with other settings is
refused, so a resumed evaluation never mixes two runs. Sample ``i`` belongs to shard
``i // shard_size``; a shard is written once, atomically (temporary file, fsync, rename), by
whichever rank sampled it, so a killed or requeued evaluation redoes only the shards it had not
finished and never counts a sample twice.

When every shard is there, :meth:`SampleStore.assemble` streams them into ``samples.npz`` in
the layout of openai/guided-diffusion's ``scripts/image_sample.py`` (``arr_0``: N x H x W x 3
uint8, ``arr_1``: the int64 labels; stored, not compressed), which its
``evaluations/evaluator.py`` reads, and removes the shards. :meth:`SampleStore.read` maps
``arr_0`` from the file without loading it (50,000 samples of 256 px are 9.8 GB).
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "samples.json"
SAMPLES = "samples.npz"
SHARD_DIR = "shards"
PNG_DIR = "png"
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length


def _fsync_replace(temp: Path, path: Path) -> None:
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, path)


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> dict[str, Any]:
    return {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}


def _read_npy_header(member: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    return np.lib.format.read_array_header_2_0(member)


def npz_array_shape(path: str | os.PathLike[str], name: str = "arr_0") -> tuple[int, ...] | None:
    """The shape of array ``name`` of an ``.npz`` from its header (None if it has no such
    array), without reading the array."""
    with zipfile.ZipFile(path) as archive:
        if f"{name}.npy" not in archive.namelist():
            return None
        with archive.open(f"{name}.npy") as member:
            return tuple(_read_npy_header(member)[0])


def adm_images(path: str | os.PathLike[str], name: str = "arr_0.npy") -> np.memmap:
    """Memory-map array ``name`` of an uncompressed ``.npz`` (an ADM sample batch) read-only."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{path}: {name} is compressed and cannot be memory-mapped")
        with archive.open(info) as member:
            shape, fortran, dtype = _read_npy_header(member)
            header_length = member.tell()
    if fortran:
        raise ValueError(f"{path}: {name} is stored in Fortran order")
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise ValueError(f"{path}: no local zip header for {name}")
    offset = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length + header_length
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


class SampleStore:
    """The samples of one (generator, sampler setting) in ``directory`` (module docstring).

    ``manifest`` is a JSON-ready dict of everything that decides the images; ``num_samples``
    and ``shard_size`` are part of it.
    """

    def __init__(self, directory: str | Path, manifest: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.manifest = json.loads(json.dumps(manifest))
        self.num_samples = int(manifest["num_samples"])
        self.shard_size = int(manifest["shard_size"])
        if self.num_samples < 1 or self.shard_size < 1:
            raise ValueError("num_samples and shard_size must be positive")

    @property
    def npz_path(self) -> Path:
        """The assembled ADM sample batch."""
        return self.directory / SAMPLES

    @property
    def png_dir(self) -> Path:
        """Where ``--png`` writes one PNG per sample (``000000.png``, ...)."""
        return self.directory / PNG_DIR

    @property
    def num_shards(self) -> int:
        """How many shards the samples are cut into."""
        return -(-self.num_samples // self.shard_size)

    def shard_range(self, shard: int) -> tuple[int, int]:
        """The sample indices ``[start, stop)`` of ``shard``."""
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.num_samples)

    def _shard_path(self, shard: int) -> Path:
        return self.directory / SHARD_DIR / f"shard-{shard:06d}.npz"

    def check(self) -> None:
        """ValueError if the folder holds samples made with another manifest."""
        path = self.directory / MANIFEST
        if not path.is_file():
            return
        saved = json.loads(path.read_text(encoding="utf-8"))
        differ = sorted(
            key
            for key in set(saved) | set(self.manifest)
            if saved.get(key) != self.manifest.get(key)
        )
        if differ:
            raise ValueError(
                f"{self.directory} holds samples made with other settings (keys {differ}); "
                "use another --out, or delete that folder to sample again"
            )

    def open(self) -> None:
        """Check the folder (:meth:`check`) and write its manifest if it has none (rank 0)."""
        self.check()
        path = self.directory / MANIFEST
        if not path.is_file():
            (self.directory / SHARD_DIR).mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{MANIFEST}.tmp")
            temp.write_text(json.dumps(self.manifest, indent=2) + "\n", encoding="utf-8")
            _fsync_replace(temp, path)

    @property
    def complete(self) -> bool:
        """True once ``samples.npz`` has been assembled."""
        return self.npz_path.is_file()

    def pending_shards(self) -> list[int]:
        """The shards not written yet (none once the samples are assembled)."""
        if self.complete:
            return []
        return [k for k in range(self.num_shards) if not self._shard_path(k).is_file()]

    def write_shard(self, shard: int, images: np.ndarray, labels: np.ndarray) -> Path:
        """Write shard ``shard``: N x H x W x 3 uint8 ``images`` and their int64 ``labels``."""
        start, stop = self.shard_range(shard)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"shard images must be N x H x W x 3 uint8, got {images.shape}")
        if len(images) != stop - start or labels.shape != (stop - start,):
            raise ValueError(
                f"shard {shard} holds samples {start}..{stop - 1}: {stop - start} images and "
                f"labels, got {len(images)} and {labels.shape}"
            )
        path = self._shard_path(shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.tmp")
        with open(temp, "wb") as handle:
            np.savez(handle, images=images, labels=labels.astype(np.int64))
        _fsync_replace(temp, path)
        return path

    def assemble(self) -> Path:
        """Stream every shard, in order, into ``samples.npz`` and remove the shards."""
        if self.complete:
            self._remove_shards()
            return self.npz_path
        missing = self.pending_shards()
        if missing:
            raise ValueError(f"{self.directory}: shards {missing[:5]} are missing")
        with np.load(self._shard_path(0)) as first:
            frame = first["images"].shape[1:]
        temp = self.directory / f".{SAMPLES}.tmp"
        with zipfile.ZipFile(temp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            with archive.open("arr_0.npy", "w", force_zip64=True) as member:
                header = _npy_header((self.num_samples, *frame), np.dtype(np.uint8))
                np.lib.format.write_array_header_1_0(member, header)
                labels = []
                for shard in range(self.num_shards):
                    with np.load(self._shard_path(shard)) as data:
                        images = data["images"]
                        if images.shape[1:] != frame:
                            raise ValueError(
                                f"shard {shard} holds {images.shape[1:]} images, shard 0 {frame}"
                            )
                        member.write(np.ascontiguousarray(images).tobytes())
                        labels.append(data["labels"])
            with archive.open("arr_1.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.concatenate(labels).astype(np.int64))
        _fsync_replace(temp, self.npz_path)
        self._remove_shards()
        return self.npz_path

    def _remove_shards(self) -> None:
        shard_dir = self.directory / SHARD_DIR
        if shard_dir.is_dir():
            for path in shard_dir.glob("*.npz"):
                path.unlink()

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``[start, stop)`` of the assembled file: (uint8 N x H x W x 3, int64 labels)."""
        images = adm_images(self.npz_path)
        labels = adm_images(self.npz_path, "arr_1.npy")
        return np.array(images[start:stop]), np.array(labels[start:stop])

    def write_pngs(self, start: int, images: np.ndarray) -> None:
        """Write ``images`` (samples ``start``, ``start + 1``, ...) as ``png/<index:06d>.png``,
        skipping files already there; each file appears atomically."""
        from PIL import Image

        self.png_dir.mkdir(parents=True, exist_ok=True)
        for offset, image in enumerate(images):
            path = self.png_dir / f"{start + offset:06d}.png"
            if path.is_file():
                continue
            temp = path.with_name(f".{path.name}.tmp")
            Image.fromarray(image).save(temp, format="PNG")
            os.replace(temp, path)

    def image_shape(self) -> tuple[int, int, int]:
        """H x W x 3 of the assembled samples."""
        return tuple(adm_images(self.npz_path).shape[1:])

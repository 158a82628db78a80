"""Shared fixtures: one torch thread, an empty weights cache, tiny tokenizers and generator runs
saved to disk, reference batches of embedded crops."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from freqlat.tokenizers import create_tokenizer


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the test machine's cores are shared, and oversubscription is slow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def empty_weight_caches(tmp_path, monkeypatch):
    """Point every weights cache at an empty folder, so no test depends on what is installed."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("FREQLAT_CACHE", str(tmp_path / "freqlat-cache"))


@pytest.fixture
def saved_tokenizer(tmp_path):
    """Save a randomly initialised preset with save_pretrained; returns (directory, model)."""

    def save(preset: str, seed: int = 0):
        torch.manual_seed(seed)
        model = create_tokenizer(preset).eval()
        directory = tmp_path / "models" / f"{preset}-{seed}"
        model.save_pretrained(directory)
        return directory, model

    return save


NUM_CLASSES = 10
TOKENIZER_OF = {"flow": "va-vae-f16d32-tiny", "ldm": "kl-vae-f16d16-tiny", "var": "ms-vq-vae-tiny"}
IMAGE_SIZE = {"flow": 32, "ldm": 64, "var": 64}


def write_reference_batch(path, size: int, count: int = 6):
    """An ADM reference batch (arr_0 only) of ``count`` embedded validation crops of ``size``."""
    from freqlat.core import EmbeddedPhotos
    from freqlat.metrics import to_uint8, write_adm_npz

    data = EmbeddedPhotos("val", size)
    images = to_uint8(torch.stack([data[i][0] for i in range(count)]))
    write_adm_npz(path, images)
    return path


@pytest.fixture
def reference_batch():
    """Write an ADM reference batch of embedded crops: ``reference_batch(path, size)``."""
    return write_reference_batch


def _nudge(model, seed: int) -> None:
    """Add noise to every weight: zero-initialised layers would make every sample alike."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:  # not LightningDiT's fixed position table
                parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))


def build_generator(family: str, tokenizer, tokenizer_spec: str, seed: int = 0):
    """A tiny generator of ``family`` (flow, ldm, var) for ``tokenizer``, and its latent space
    (random statistics; none for VAR's tokens)."""
    from freqlat.generators import LatentSpace, create_generator

    torch.manual_seed(seed)
    if family == "var":
        model = create_generator("var-tiny", tokenizer=tokenizer, num_classes=NUM_CLASSES)
        _nudge(model, seed)
        space = LatentSpace(
            tokenizer_spec, (32, 4, 4), (0.0,) * 32, (1.0,) * 32, normalization="none"
        )
        return model.eval(), space
    if family == "flow":
        model = create_generator(
            "lightningdit-tiny", input_size=2, in_channels=32, num_classes=NUM_CLASSES
        )
        shape = (32, 2, 2)
    else:
        model = create_generator("ldm-tiny", latent_channels=16, num_classes=NUM_CLASSES)
        shape = (16, 4, 4)
    _nudge(model, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    mean = tuple(float(v) for v in torch.randn(shape[0], generator=generator))
    std = tuple(float(v) for v in torch.rand(shape[0], generator=generator) + 0.5)
    return model.eval(), LatentSpace(tokenizer_spec, shape, mean, std, source="random")


@dataclass
class TinyRun:
    """A saved tiny generator run and what it was made of."""

    run: Path
    model: torch.nn.Module
    space: object
    tokenizer_dir: Path
    image_size: int


@pytest.fixture
def generator_run(tmp_path, saved_tokenizer):
    """``generator_run(family)``: a freqlat-train-style run directory of a tiny generator
    (``export/ema`` and ``export/model`` with their latent_space.json, ``config.json`` with
    the epochs) on a saved tiny tokenizer; returns a :class:`TinyRun`."""

    def make(family: str, seed: int = 0, epochs: float | None = 3) -> TinyRun:
        tokenizer_dir, tokenizer = saved_tokenizer(TOKENIZER_OF[family])
        model, space = build_generator(family, tokenizer, str(tokenizer_dir), seed)
        run = tmp_path / "runs" / f"{family}-{seed}"
        for kind in ("ema", "model"):
            model.save_pretrained(run / "export" / kind)
            space.save(run / "export" / kind)
        (run / "config.json").write_text(json.dumps({"epochs": epochs}))
        return TinyRun(run, model, space, tokenizer_dir, IMAGE_SIZE[family])

    return make

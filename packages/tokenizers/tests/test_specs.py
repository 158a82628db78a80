"""Tokenizer specs (what --tokenizer takes): directories, run directories, random:PRESET, errors."""

import pytest
import torch

from freqlat.tokenizers import create_tokenizer, load_tokenizer, unique_names


def test_random_spec_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = load_tokenizer("random:kl-vae-f16d16-tiny", seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    second = load_tokenizer("random:kl-vae-f16d16-tiny", seed=4)
    assert first.name == "kl-vae-f16d16-tiny (random weights)"
    assert first.source == "random init, seed 4" and not first.model.training
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_pretrained_and_run_directories_load_with_their_labels(tmp_path):
    torch.manual_seed(0)
    model = create_tokenizer("kl-vae-f16d16-tiny")
    model.save_pretrained(tmp_path / "plain")
    model.save_pretrained(tmp_path / "run" / "export" / "ema")
    model.save_pretrained(tmp_path / "run" / "export" / "model")
    assert load_tokenizer(str(tmp_path / "plain")).name == "kl-vae-f16d16-tiny"
    assert load_tokenizer(str(tmp_path / "run")).name == "kl-vae-f16d16-tiny (EMA)"
    raw = load_tokenizer(f"{tmp_path / 'run'}:raw")
    assert raw.name == "kl-vae-f16d16-tiny (raw)" and raw.source.endswith("model")


def test_unresolvable_specs_say_what_was_tried(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a save_pretrained directory"):
        load_tokenizer(str(tmp_path))
    with pytest.raises(ValueError, match="has no released weights"):
        load_tokenizer("kl-vae-f16d16-tiny")
    with pytest.raises(FileNotFoundError, match="is not a directory, an official preset"):
        load_tokenizer("no-such-model")


def test_repeated_names_are_numbered():
    assert unique_names(["a", "b", "a", "a"]) == ["a", "b", "a #2", "a #3"]

"""VAR: sizes, the block-causal mask, the KV cache, class dropout, guidance, seeded sampling."""

import re
from pathlib import Path

import pytest
import torch

from freqlat.generators import VAR, create_generator, from_pretrained, preset_config
from freqlat.generators import var as var_module
from freqlat.generators.var import block_causal_bias, scale_levels
from freqlat.tokenizers import create_tokenizer

# sum(p.numel() for p in VAR(...).parameters()) of FoundationVision/VAR models/var.py, built as
# build_vae_var builds it (width 64 d, d heads, attn_l2_norm, no shared AdaLN): the transformer's
# parameters only, without its buffers and without the VQ-VAE.
UPSTREAM_PARAMETERS = {
    "var-d16": 310_283_520,
    "var-d20": 600_917_136,
    "var-d24": 1_033_399_360,
    "var-d30": 2_010_020_356,
}


def _closed_form_parameters(config) -> int:
    c, heads = config.width, config.num_heads
    # per block: qkv 3c^2 + q/v biases 2c + head scales + proj c^2 + c + MLP 8c^2 + 5c
    # + AdaLN 6c^2 + 6c
    block = 18 * c * c + 14 * c + heads
    sizes = config.patch_sizes
    embeddings = (
        (config.latent_channels + 1) * c  # word_embed
        + (config.num_classes + 1) * c  # class_emb, with the unconditional class
        + sizes[0] ** 2 * c  # pos_start
        + sum(p * p for p in sizes) * c  # pos_1LC
        + len(sizes) * c  # lvl_embed
    )
    head = (2 * c * c + 2 * c) + (c + 1) * config.vocab_size
    return config.depth * block + embeddings + head


@pytest.mark.parametrize("preset", sorted(UPSTREAM_PARAMETERS))
def test_preset_parameter_counts_match_the_upstream_constructor(preset):
    with torch.device("meta"):
        model = create_generator(preset)
    count = sum(p.numel() for p in model.parameters())
    assert count == UPSTREAM_PARAMETERS[preset] == _closed_form_parameters(model.config)
    depth = model.config.depth
    assert (model.config.width, model.config.num_heads) == (64 * depth, depth)
    assert model.config.drop_path_rate == pytest.approx(0.1 * depth / 24)
    assert model.seq_len == 680 and model.config.attn_l2_norm and not model.config.shared_adaln


def test_tiny_preset_uses_the_tiny_tokenizers_token_space(tiny_var, tiny_tokenizer):
    config = preset_config("var-tiny")
    quantizer = tiny_tokenizer.quantize
    assert (config.vocab_size, config.latent_channels) == (quantizer.vocab_size, quantizer.channels)
    assert config.patch_sizes == quantizer.patch_sizes == (1, 2, 3, 4)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        indices = tiny_tokenizer.encode(images).indices
        x_input = tiny_var.teacher_forcing_inputs(indices)
        logits = tiny_var(torch.tensor([3, 7]), x_input)
    assert x_input.shape == (2, 29, 32) and logits.shape == (2, 30, 256)


def test_mask_lets_a_token_see_exactly_its_own_and_earlier_scales():
    levels = scale_levels((1, 2, 3))
    assert levels.tolist() == [[0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2]]
    bias = block_causal_bias((1, 2, 3))[0, 0]
    for query in range(14):
        for key in range(14):
            visible = levels[0, key] <= levels[0, query]
            assert bias[query, key].item() == (0.0 if visible else float("-inf"))


def test_changing_one_scale_moves_the_logits_of_that_scale_and_later_only(tiny_var):
    labels = torch.tensor([1, 2])
    x_input = torch.randn(2, 29, 32)
    bounds = [0, 1, 5, 14, 30]  # token ranges of scales 1, 2, 3, 4
    with torch.no_grad():
        before = tiny_var(labels, x_input)
        for scale in (1, 2, 3):
            changed = x_input.clone()
            changed[:, bounds[scale] - 1 : bounds[scale + 1] - 1] += 1.0  # inputs of `scale`
            after = tiny_var(labels, changed)
            assert torch.equal(after[:, : bounds[scale]], before[:, : bounds[scale]])
            assert (
                (after[:, bounds[scale] :] - before[:, bounds[scale] :]).abs().amin(-1).gt(0).all()
            )


def test_kv_cached_generation_equals_the_teacher_forced_pass_on_its_tokens(tiny_var):
    labels = torch.tensor([5, 9, 1000])
    captured = []
    hook = tiny_var.head.register_forward_hook(lambda m, a, out: captured.append(out[:3]))
    generators = [torch.Generator().manual_seed(s) for s in range(3)]
    tokens = tiny_var.generate(labels, cfg=0.0, top_k=50, top_p=0.9, generator=generators)
    hook.remove()
    with torch.no_grad():
        full = tiny_var(labels, tiny_var.teacher_forcing_inputs(tokens))
    torch.testing.assert_close(torch.cat(captured, dim=1), full, rtol=0, atol=1e-5)


def test_labels_are_dropped_only_in_training(tiny_tokenizer):
    torch.manual_seed(0)
    model = create_generator(
        "var-tiny", tokenizer=tiny_tokenizer, class_dropout=1.0, drop_path_rate=0.0
    )
    labels, x_input = torch.tensor([3, 4]), torch.randn(2, 29, 32)
    with torch.no_grad():
        model.eval()
        conditional = model(labels, x_input)
        unconditional = model(torch.full_like(labels, 1000), x_input)
        model.train()
        dropped = model(labels, x_input)
    assert not torch.allclose(conditional, unconditional)
    torch.testing.assert_close(dropped, unconditional, rtol=0, atol=0)
    never = create_generator("var-tiny", class_dropout=0.0, drop_path_rate=0.0)
    never.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(never.train()(labels, x_input), conditional, rtol=0, atol=0)


def test_guidance_ramps_from_none_at_the_first_scale_to_one_plus_cfg_at_the_last(
    tiny_var, monkeypatch
):
    # Stub: the conditional rows of every scale's logits are 1, the unconditional ones 3, so the
    # guided logits are (1 + t) - 3 t = 1 - 2 t with t = cfg * k / (K - 1).
    def stub_logits(h, class_embedding):
        batch = h.shape[0] // 2
        logits = torch.ones(h.shape[0], h.shape[1], 256)
        logits[batch:] = 3.0
        return logits

    seen = []

    def first_token(logits, top_k, top_p, generator):
        seen.append(logits[0, 0, 0].item())
        return torch.zeros(logits.shape[:2], dtype=torch.long)

    monkeypatch.setattr(tiny_var, "_logits", stub_logits)
    monkeypatch.setattr(var_module, "sample_tokens", first_token)
    tiny_var.generate(torch.tensor([1, 2]), cfg=1.5)
    expected = [1 - 2 * 1.5 * k / 3 for k in range(4)]
    assert seen == pytest.approx(expected, abs=1e-6)


def test_seeded_generation_is_reproducible_and_independent_of_its_batch(tiny_var):
    def run(labels, seeds):
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        return tiny_var.generate(torch.tensor(labels), generator=generators)

    batch = run([3, 5, 1000], [10, 11, 12])
    again = run([3, 5, 1000], [10, 11, 12])
    alone = run([5], [11])
    other = run([5], [13])
    assert all(torch.equal(a, b) for a, b in zip(batch, again, strict=True))
    assert all(torch.equal(a[1:2], b) for a, b in zip(batch, alone, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(alone, other, strict=True))
    with pytest.raises(ValueError, match="got 2 generators for a batch of 3"):
        tiny_var.generate(torch.tensor([1, 2, 3]), generator=[torch.Generator()] * 2)


def test_generation_returns_token_maps_the_tokenizer_decodes(tiny_var, tiny_tokenizer):
    tiny_var.train()
    tokens = tiny_var.generate(torch.tensor([0, 999]), generator=torch.Generator().manual_seed(0))
    assert tiny_var.training  # generate ran in eval mode and restored the mode
    assert [tuple(t.shape) for t in tokens] == [(2, 1), (2, 4), (2, 9), (2, 16)]
    assert all(t.dtype == torch.long and int(t.min()) >= 0 and int(t.max()) < 256 for t in tokens)
    with torch.no_grad():
        assert tiny_tokenizer.decode_indices(tokens).shape == (2, 3, 64, 64)


def test_a_tokenizer_with_another_codebook_or_kind_is_refused(tiny_tokenizer):
    with pytest.raises(
        ValueError, match=r"codebook 128 x 32 .*\(vocab_size 256, latent_channels 32"
    ):
        create_generator("var-tiny", tokenizer=create_tokenizer("ms-vq-vae-tiny", vocab_size=128))
    with pytest.raises(ValueError, match=r"codebook 256 x 16"):
        create_generator("var-tiny", tokenizer=create_tokenizer("ms-vq-vae-tiny", z_channels=16))
    with pytest.raises(ValueError, match="needs a multi-scale VQ tokenizer"):
        create_generator("var-tiny", tokenizer=create_tokenizer("kl-vae-f16d16-tiny"))
    with pytest.raises(ValueError, match="has no tokenizer"):
        create_generator("var-tiny").generate(torch.tensor([1]))
    with pytest.raises(ValueError, match="labels must lie in"):
        create_generator("var-tiny", tokenizer=tiny_tokenizer).generate(torch.tensor([1001]))


def test_save_and_load_keep_weights_buffers_and_take_the_tokenizer(
    tiny_var, tiny_tokenizer, tmp_path
):
    tiny_var.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path, tokenizer=tiny_tokenizer)
    assert isinstance(loaded, VAR) and loaded.preset == "var-tiny"
    labels, x_input = torch.tensor([2]), torch.randn(1, 29, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(labels, x_input), tiny_var(labels, x_input))
    assert loaded.quantizer is tiny_tokenizer.quantize


def test_readme_var_example_runs():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## VAR", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, re.S)
    exec(compile(example, "README.md (VAR)", "exec"), {})

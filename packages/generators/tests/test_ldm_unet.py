"""The LDM UNet: shapes, the released model's parameter count, zero-initialised outputs, the
class embedder's null row, label dropout, input checks, checkpointing, save and load."""

import pytest
import torch

from freqlat.generators import LDMUNet, create_generator, from_pretrained
from freqlat.generators.ldm_attention import SpatialTransformer
from freqlat.generators.ldm_blocks import ResBlock

# UNetModel(**configs/latent-diffusion/cin256-v2.yaml unet params) of CompVis/latent-diffusion
# has 400,920,579 parameters (counted from upstream's constructor); its ClassEmbedder(512, 1001)
# adds 1001 x 512.
CIN256_V2_PARAMETERS = 400_920_579 + 1001 * 512


def _upstream_parameter_count(c) -> int:
    """Parameters of upstream's UNetModel + ClassEmbedder for config ``c``, by the arithmetic of
    upstream's constructor (openaimodel.py UNetModel.__init__, attention.py SpatialTransformer)."""
    mc, emb, d = c.model_channels, 4 * c.model_channels, c.context_dim

    def conv(i, o, k):
        return i * o * k * k + o

    def linear(i, o, bias=True):
        return i * o + (o if bias else 0)

    def res(i, o):
        skip = conv(i, o, 1) if i != o else 0
        return 2 * i + conv(i, o, 3) + linear(emb, o) + 2 * o + conv(o, o, 3) + skip

    def transformer(ch):  # inner width = heads * head_dim = ch
        self_attn = 3 * linear(ch, ch, bias=False) + linear(ch, ch)
        cross_attn = linear(ch, ch, bias=False) + 2 * linear(d, ch, bias=False) + linear(ch, ch)
        feed_forward = linear(ch, 8 * ch) + linear(4 * ch, ch)
        block = self_attn + cross_attn + feed_forward + 3 * 2 * ch
        return 2 * ch + conv(ch, ch, 1) + c.transformer_depth * block + conv(ch, ch, 1)

    total = linear(mc, emb) + linear(emb, emb) + (c.num_classes + 1) * d
    total += conv(c.latent_channels, mc, 3)
    widths, ch, factor = [mc], mc, 1
    last = len(c.channel_mult) - 1
    for level, mult in enumerate(c.channel_mult):
        for _ in range(c.num_res_blocks):
            total += res(ch, mult * mc)
            ch = mult * mc
            total += transformer(ch) if factor in c.attention_resolutions else 0
            widths.append(ch)
        if level != last:
            total += conv(ch, ch, 3)
            widths.append(ch)
            factor *= 2
    total += 2 * res(ch, ch) + transformer(ch)
    for level, mult in reversed(list(enumerate(c.channel_mult))):
        for index in range(c.num_res_blocks + 1):
            total += res(ch + widths.pop(), mult * mc)
            ch = mult * mc
            total += transformer(ch) if factor in c.attention_resolutions else 0
            if level and index == c.num_res_blocks:
                total += conv(ch, ch, 3)
                factor //= 2
    return total + 2 * ch + conv(ch, c.latent_channels, 3)


@pytest.fixture(scope="module")
def tiny(ldm_reference):
    torch.manual_seed(0)
    return ldm_reference.randomize_(create_generator("ldm-tiny", latent_channels=4)).eval()


def _inputs(model, n=3, size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, model.latent_channels, size, size, generator=generator)
    t = torch.randint(0, 1000, (n,), generator=generator)
    y = torch.randint(0, 1000, (n,), generator=generator)
    return x, t, y


def test_released_preset_has_upstreams_parameter_count(on_meta):
    model = on_meta("ldm-cin256-v2")
    assert sum(p.numel() for p in model.parameters()) == CIN256_V2_PARAMETERS
    assert _upstream_parameter_count(model.config) == CIN256_V2_PARAMETERS


@pytest.mark.parametrize("preset", ["ldm-f16d16", "ldm-f16d32", "ldm-f16d64", "ldm-tiny"])
def test_every_preset_follows_upstreams_constructor(on_meta, preset):
    model = on_meta(preset)
    assert sum(p.numel() for p in model.parameters()) == _upstream_parameter_count(model.config)


@pytest.mark.parametrize(
    ("preset", "shape"),
    [("ldm-cin256-v2", (1, 3, 64, 64)), ("ldm-f16d64", (2, 64, 16, 16))],
)
def test_preset_geometries_map_latents_to_eps_of_the_same_shape(preset, shape):
    # the preset's levels and attention at 1/6 (1/8) of its width, to run on a CPU
    torch.manual_seed(0)
    model = create_generator(preset, model_channels=32, context_dim=32).eval()
    n = shape[0]
    with torch.no_grad():
        out = model(torch.randn(shape), torch.full((n,), 999), torch.zeros(n, dtype=torch.long))
    assert out.shape == shape


@pytest.mark.parametrize("size", [4, 6, 8])
def test_tiny_model_takes_any_size_its_levels_divide(tiny, size):
    x, t, y = _inputs(tiny, size=size)
    assert tiny(x, t, y).shape == x.shape


def test_outputs_are_zero_initialised():
    torch.manual_seed(0)
    model = create_generator("ldm-tiny").eval()
    zeroed = [model.out[2]]
    for module in model.modules():
        if isinstance(module, ResBlock):
            zeroed.append(module.out_layers[3])
        elif isinstance(module, SpatialTransformer):
            zeroed.append(module.proj_out)
    assert len(zeroed) == 1 + 8 + 4  # out conv, 8 residual blocks, 4 transformers
    assert all(not p.any() for m in zeroed for p in m.parameters())
    x, t, y = _inputs(model, size=4)
    assert not model(x, t, y).any()


def test_class_embedder_has_a_null_row_that_drop_selects(tiny):
    assert tiny.class_embedder.embedding.num_embeddings == 1001 and tiny.null_class == 1000
    x, t, y = _inputs(tiny)
    null = torch.full_like(y, 1000)
    dropped = tiny(x, t, y, drop=torch.tensor([True, False, True]))
    mask = torch.tensor([True, False, True])[:, None, None, None]
    expected = torch.where(mask, tiny(x, t, null), tiny(x, t, y))
    torch.testing.assert_close(dropped, expected, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(tiny(x, t, null), tiny(x, t, y))
    context = tiny.class_embedder(torch.tensor([1000]))
    assert context.shape == (1, 1, 32)
    torch.testing.assert_close(context[0, 0], tiny.class_embedder.embedding.weight[1000])


def test_labels_are_dropped_only_in_train_mode(ldm_reference):
    torch.manual_seed(0)
    model = ldm_reference.randomize_(create_generator("ldm-tiny", class_dropout_prob=0.5))
    x, t, y = _inputs(model.eval(), n=64, size=4)
    with torch.no_grad():
        conditional, null = model(x, t, y), model(x, t, torch.full_like(y, 1000))
        model.train()
        torch.manual_seed(1)
        trained = model(x, t, y)
    model.eval()
    was_null = (trained - null).flatten(1).abs().amax(1) < 1e-5
    kept = (trained - conditional).flatten(1).abs().amax(1) < 1e-5
    assert torch.all(was_null ^ kept) and 16 < int(was_null.sum()) < 48
    drops = model.sample_label_drop(20000, torch.Generator().manual_seed(0))
    assert abs(drops.float().mean().item() - 0.5) < 0.02


def test_bad_inputs_are_clear_errors(tiny):
    x, t, y = _inputs(tiny)
    with pytest.raises(ValueError, match=r"expected latents N x 4 x h x w, got \(3, 3, 8, 8\)"):
        tiny(x[:, :3], t, y)
    with pytest.raises(ValueError, match="not divisible by the UNet's downsampling factor 2"):
        tiny(x[..., :7, :7], t, y)
    with pytest.raises(ValueError, match="t must hold 3 integers"):
        tiny(x, t.float() / 1000, y)
    with pytest.raises(ValueError, match="y must hold 3 integers"):
        tiny(x, t, y[:2])
    with pytest.raises(ValueError, match=r"attention_resolutions \[8\] name no level"):
        create_generator("ldm-tiny", attention_resolutions=(8,))
    with pytest.raises(ValueError, match="divisible by the 32 norm groups"):
        create_generator("ldm-tiny", model_channels=48)


def test_checkpointing_gives_the_same_gradients(ldm_reference):
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = ldm_reference.randomize_(
            create_generator("ldm-tiny", latent_channels=4, checkpointing=checkpointing)
        )
        x, t, y = _inputs(model, size=4)
        model(x, t, y, drop=torch.zeros(3, dtype=torch.bool)).square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_save_and_load_keep_weights_config_and_schedule(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)
    assert isinstance(loaded, LDMUNet) and loaded.config == tiny.config
    assert loaded.preset == "ldm-tiny"
    x, t, y = _inputs(tiny)
    torch.testing.assert_close(loaded.eval()(x, t, y), tiny(x, t, y), rtol=0, atol=0)

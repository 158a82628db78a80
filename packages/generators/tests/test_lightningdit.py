"""LightningDiT: presets and parameter counts, adaLN-Zero, the position tables, label dropout,
gradient checkpointing, bf16 autocast, save/load."""

import math

import pytest
import torch

from freqlat.generators import LightningDiT, create_generator, from_pretrained, preset_config
from freqlat.generators.lightningdit import AxialRoPE, sincos_position_table

SMALL = dict(input_size=8, in_channels=6, hidden_size=32, depth=2, num_heads=2, num_classes=10)


def _perturbed(model: LightningDiT, seed: int = 0) -> LightningDiT:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name != "pos_embed":
                param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return model


def _inputs(config, n: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, config.in_channels, config.input_size, config.input_size, generator=g)
    return x, torch.rand(n, generator=g), torch.randint(0, config.num_classes, (n,), generator=g)


def _upstream_count(depth: int, width: int, patch: int, channels: int = 32, grid: int = 16) -> int:
    """Parameters of upstream's LightningDiT constructor (release flags), counted by hand."""
    hidden = int(2 / 3 * 4 * width)
    block = (
        (3 * width * width + 3 * width)  # qkv
        + (width * width + width)  # proj
        + 2 * width  # RMSNorm scales
        + (width * 2 * hidden + 2 * hidden)
        + (hidden * width + width)  # SwiGLU w12, w3
        + (width * 6 * width + 6 * width)  # adaLN modulation
    )
    out = patch * patch * channels
    return (
        depth * block
        + (channels * patch * patch * width + width)  # patch embedding
        + (256 * width + width + width * width + width)  # timestep MLP
        + 1001 * width  # label table with the null class
        + (grid // patch) ** 2 * width  # the fixed sin-cos table (a parameter upstream)
        + width + (width * out + out) + (width * 2 * width + 2 * width)  # final layer
    )  # fmt: skip


@pytest.mark.parametrize(
    ("preset", "depth", "width", "patch"),
    [
        ("lightningdit-b-1", 12, 768, 1),
        ("lightningdit-b-2", 12, 768, 2),
        ("lightningdit-l-2", 24, 1024, 2),
        ("lightningdit-xl-1", 28, 1152, 1),
        ("lightningdit-xl-2", 28, 1152, 2),
    ],
)
def test_parameter_counts_follow_the_upstream_constructors(preset, depth, width, patch):
    with torch.device("meta"):
        model = create_generator(preset)
    count = sum(p.numel() for p in model.parameters())
    assert count == _upstream_count(depth, width, patch)
    if preset == "lightningdit-xl-1":
        assert round(count / 1e6, 2) == 675.26  # the published size


def test_output_has_the_input_shape_and_in_channels_is_overridable():
    with torch.device("meta"):
        assert (
            create_generator("lightningdit-xl-1", in_channels=64).x_embedder.proj.in_channels == 64
        )
    for patch in (1, 2):
        model = create_generator("lightningdit-tiny", **SMALL, patch_size=patch)
        x, t, y = _inputs(model.config)
        assert model(x, t, y).shape == x.shape
    assert preset_config("lightningdit-tiny").in_channels == 32
    with pytest.raises(ValueError, match="unknown config key 'channels'"):
        create_generator("lightningdit-tiny", channels=4)


def test_a_fresh_model_returns_zeros_adaln_zero():
    model = create_generator("lightningdit-tiny", **SMALL)
    x, t, y = _inputs(model.config)
    assert torch.equal(model(x, t, y), torch.zeros_like(x))
    assert model.y_embedder.embedding_table.num_embeddings == 11  # classes + the null class


def test_sincos_table_is_the_closed_form():
    width, grid = 16, 5
    table = sincos_position_table(width, grid)
    for row, col in [(0, 0), (2, 3), (4, 1)]:
        n = row * grid + col
        for k in range(width // 4):
            w = 10000 ** (-k / (width / 4))
            expected = [
                math.sin(col * w), math.cos(col * w), math.sin(row * w), math.cos(row * w)
            ]  # fmt: skip
            got = [table[n, k + i * width // 4].item() for i in range(4)]
            assert got == pytest.approx(expected, abs=1e-6)
    model = create_generator("lightningdit-tiny", **SMALL)
    assert torch.equal(model.pos_embed[0], sincos_position_table(32, 8))
    assert not model.pos_embed.requires_grad


def test_axial_rope_rotates_pairs_by_row_then_column_angles():
    head_dim, grid, theta = 8, 4, 10000.0
    rope = AxialRoPE(head_dim, grid)
    q = torch.randn(grid * grid, head_dim, generator=torch.Generator().manual_seed(0))
    rotated = rope(q)
    half = head_dim // 2
    for n in range(grid * grid):
        row, col = divmod(n, grid)
        for pair in range(head_dim // 2):
            axis_pos = row if pair < half // 2 else col
            k = pair % (half // 2)
            angle = axis_pos * theta ** (-2 * k / half)
            z = complex(q[n, 2 * pair].item(), q[n, 2 * pair + 1].item()) * complex(
                math.cos(angle), math.sin(angle)
            )
            got = complex(rotated[n, 2 * pair].item(), rotated[n, 2 * pair + 1].item())
            assert abs(got - z) < 1e-5


def test_rope_attention_scores_depend_only_on_relative_position():
    rope = AxialRoPE(8, 6)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(8, generator=g), torch.randn(8, generator=g)

    def score(a, b):  # query at token a, key at token b, (row, col) each
        qs = torch.zeros(36, 8)
        ks = torch.zeros(36, 8)
        qs[a[0] * 6 + a[1]], ks[b[0] * 6 + b[1]] = q, k
        return (rope(qs)[a[0] * 6 + a[1]] * rope(ks)[b[0] * 6 + b[1]]).sum()

    torch.testing.assert_close(score((1, 2), (3, 0)), score((2, 4), (4, 2)))
    assert not torch.allclose(score((1, 2), (3, 0)), score((1, 2), (0, 3)))


def test_labels_are_dropped_in_training_mode_only():
    model = _perturbed(create_generator("lightningdit-tiny", **SMALL, class_dropout_prob=1.0))
    x, t, y = _inputs(model.config)
    null = torch.full_like(y, model.null_class)
    with torch.no_grad():
        model.eval()
        conditional, unconditional = model(x, t, y), model(x, t, null)
        assert not torch.allclose(conditional, unconditional)
        model.train()
        torch.testing.assert_close(model(x, t, y), unconditional)


def test_gradient_checkpointing_gives_the_same_output_and_gradients():
    torch.manual_seed(0)
    plain = _perturbed(create_generator("lightningdit-tiny", **SMALL)).eval()
    checkpointed = create_generator("lightningdit-tiny", **SMALL, gradient_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.eval()
    x, t, y = _inputs(plain.config)
    plain(x, t, y).square().sum().backward()
    checkpointed(x, t, y).square().sum().backward()
    for (name, a), (_, b) in zip(
        plain.named_parameters(), checkpointed.named_parameters(), strict=True
    ):
        if a.requires_grad:
            torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_bf16_autocast_on_cpu_stays_close_to_fp32():
    model = _perturbed(create_generator("lightningdit-tiny", **SMALL)).eval()
    x, t, y = _inputs(model.config)
    with torch.no_grad():
        reference = model(x, t, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x, t, y)
    assert low.dtype == torch.bfloat16
    assert (low.float() - reference).abs().max() < 0.03 * reference.abs().max()


def test_save_and_load_round_trip(tmp_path):
    model = _perturbed(create_generator("lightningdit-tiny", **SMALL))
    model.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)
    assert isinstance(loaded, LightningDiT) and loaded.config == model.config
    assert loaded.preset == "lightningdit-tiny"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

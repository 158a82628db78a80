"""VAR's objective (uniform cross-entropy over every token) and the presets' training recipes."""

import pytest
import torch

from freqlat.generators import NextScaleObjective, create_generator, var_training_recipe
from freqlat.generators.var_training import decays


def _batch(tokenizer):
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        return torch.tensor([1, 2, 3]), tokenizer.encode(images).indices


def test_loss_is_the_mean_cross_entropy_over_every_token_of_every_scale(tiny_var, tiny_tokenizer):
    labels, indices = _batch(tiny_tokenizer)
    with torch.no_grad():
        terms = NextScaleObjective()(tiny_var, labels, indices)
        logits = tiny_var(labels, tiny_var.teacher_forcing_inputs(indices))
    targets = torch.cat([i.flatten(1) for i in indices], dim=1)  # 3 x 30
    token_nll = -logits.log_softmax(-1).gather(-1, targets[..., None])[..., 0]
    # upstream: per-token loss x (1 / L), summed over tokens, averaged over the batch
    torch.testing.assert_close(terms["loss"], token_nll.mul(1 / 30).sum(-1).mean())
    torch.testing.assert_close(terms["ce"], terms["loss"])
    torch.testing.assert_close(terms["ce_last_scale"], token_nll[:, -16:].mean())
    hits = logits.argmax(-1) == targets
    torch.testing.assert_close(terms["accuracy"], hits.float().mean())
    torch.testing.assert_close(terms["accuracy_last_scale"], hits[:, -16:].float().mean())


def test_label_smoothing_mixes_in_the_uniform_target(tiny_var, tiny_tokenizer):
    labels, indices = _batch(tiny_tokenizer)
    with torch.no_grad():
        plain = NextScaleObjective()(tiny_var, labels, indices)
        smooth = NextScaleObjective(label_smoothing=0.1)(tiny_var, labels, indices)
        logits = tiny_var(labels, tiny_var.teacher_forcing_inputs(indices))
    uniform = -logits.log_softmax(-1).mean()
    torch.testing.assert_close(smooth["loss"], 0.9 * plain["loss"] + 0.1 * uniform)
    torch.testing.assert_close(smooth["ce"], plain["ce"])
    with pytest.raises(ValueError, match="label_smoothing"):
        NextScaleObjective(label_smoothing=1.0)


def test_a_few_steps_of_the_tiny_recipe_lower_the_loss(tiny_tokenizer):
    torch.manual_seed(0)
    model = create_generator("var-tiny", tokenizer=tiny_tokenizer).train()
    recipe = var_training_recipe("var-tiny")
    optimizer = recipe.optimizer(model, batch_size=2560)  # lr 1e-3: visible in a few steps
    objective = NextScaleObjective(recipe.label_smoothing)
    labels, indices = _batch(tiny_tokenizer)
    losses = []
    for _ in range(8):
        loss = objective(model, labels, indices)["loss"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1


def test_recipes_record_upstreams_optimiser_per_preset():
    d16 = var_training_recipe("var-d16")
    assert (d16.betas, d16.weight_decay, d16.grad_clip) == ((0.9, 0.95), 0.05, 2.0)
    assert d16.peak_lr(256) == pytest.approx(1e-4) and d16.peak_lr() == pytest.approx(3e-4)
    assert (d16.batch_size, d16.epochs, d16.warmup_epochs) == (768, 200, 4.0)
    d30 = var_training_recipe("var-d30")
    assert (d30.base_lr, d30.batch_size, d30.final_weight_decay) == (8e-5, 1024, 0.08)
    with pytest.raises(ValueError, match="var-d16"):
        var_training_recipe("var-d36")


def test_weight_decay_skips_biases_vectors_embeddings_of_positions_and_attention_scales():
    with torch.device("meta"):
        model = create_generator("var-d16", shared_adaln=True)
    decayed = {n for n, p in model.named_parameters() if decays(n, p)}
    assert {"blocks.0.attn.mat_qkv.weight", "class_emb.weight", "head.weight"} <= decayed
    assert {"word_embed.weight", "blocks.3.ffn.fc2.weight", "shared_ada_lin.1.weight"} <= decayed
    for kept in ("pos_1LC", "pos_start", "lvl_embed.weight", "blocks.0.attn.scale_mul_1H11",
                 "blocks.0.attn.q_bias", "blocks.0.ada_gss", "head.bias"):  # fmt: skip
        assert kept not in decayed
    groups = var_training_recipe("var-d16").param_groups(model)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_the_optimizer_is_not_fused_for_parameters_on_the_cpu(tiny_tokenizer):
    model = create_generator("var-tiny", tokenizer=tiny_tokenizer)
    assert not var_training_recipe("var-tiny").optimizer(model).defaults["fused"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_optimizer_is_fused_for_parameters_on_a_gpu(tiny_tokenizer):
    model = create_generator("var-tiny", tokenizer=tiny_tokenizer).cuda()
    assert var_training_recipe("var-tiny").optimizer(model).defaults["fused"]

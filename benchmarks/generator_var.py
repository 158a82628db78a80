"""VAR in ``bench_generators.py``: our VAR's training step, teacher-forced forward and generation
against FoundationVision/VAR's, in the same run, on identical weights, after a parity check.

Pairing: upstream's ``VQVAE`` and ``VAR`` are built from the checkout (``official_code.
official_var_pair``), every VAR and quantiser parameter filled with seeded noise
(``var_parity.randomize``); the VQVAE's state dict goes into our ``ms-vq-vae`` tokenizer
(``map_official_state``) and the VAR's into ours. Parity, in exact fp32 on the benchmark batch
(random labels and token maps): the teacher-forcing input and the logits of the eval forward,
the cross-entropy, and greedy generation (``top_k=1``: tokens, and the decoded images). Timed,
under each precision:

- ``forward``: teacher-forced logits in eval mode, from each side's own teacher-forcing input;
- ``generate``: class-conditional generation with upstream's sampling recipe (cfg 1.5, top-k
  900, top-p 0.96) decoded to images: ours is ``VAR.generate`` then the tokenizer's
  ``decode_indices``, upstream's ``autoregressive_infer_cfg`` (which decodes its f_hat);
- ``train``: one step of each side's own training loop from cached token maps: ours is
  ``NextScaleObjective`` under ``freqlat.core.training`` (autocast, a GradScaler in fp16,
  ``optimizer_step`` with the preset's AdamW and clip 2); upstream's is the body of
  ``trainer.py``'s ``train_step`` (``idxBl_to_var_input``, the forward with 10 % label dropout,
  the 1/L-weighted cross-entropy, ``AmpOptimizer.backward_clip_step`` over ``filter_params``'
  AdamW groups, the per-step argmax);
- ``train as shipped`` (with ``images``): upstream's step as ``trainer.py`` runs it, encoding the
  images with its VQVAE (``img_to_idxBl``) every step, against our step on cached tokens. No
  parity check covers the encoder here (the tokenizer benchmark has one), so that ratio is
  printed as ungated.

Upstream's ``AmpOptimizer`` autocasts on CUDA only: on a CPU its step runs in fp32 whatever the
precision (the CPU rows are fp32).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from benchlib import (
    INDEX_MISMATCH_TOL,
    PARITY_RTOL,
    ComparisonRow,
    Phase,
    TensorDiff,
    TrainingStep,
    comparison_table,
    device_name,
    exact_fp32,
    tensor_diffs,
    time_phases,
    training_row,
)
from official_code import (
    describe_checkout,
    flat_indices,
    official_var_pair,
    official_var_training,
    silenced,
)
from torch import Tensor, nn
from var_parity import official_greedy_tokens, randomize

from freqlat.core.training import autocast, grad_scaler, optimizer_step
from freqlat.generators import VAR, NextScaleObjective, VARConfig, VARTrainingRecipe
from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.official import map_official_state
from freqlat.tokenizers.pretrained import load_state_strict

# Upstream's sampling recipe for FID (FoundationVision/VAR README.md): cfg 1.5, top-k 900,
# top-p 0.96.
CFG, TOP_K, TOP_P = 1.5, 900, 0.96
# Upstream's no-weight-decay name fragments (train.py, filter_params(nowd_keys=...)).
NO_DECAY_KEYS = {
    "cls_token", "start_token", "task_token", "cfg_uncond", "pos_embed", "pos_1LC", "pos_start",
    "start_pos", "lvl_embed", "gamma", "beta", "ada_gss", "moe_bias", "scale_mul",
}  # fmt: skip
# Upstream's --fp16 flag: 0 fp32, 1 fp16 (with a GradScaler), 2 bf16.
MIXED_PRECISION = {"fp32": 0, "fp16": 1, "bf16": 2}
# Official code on one H100 (issue 13): VAR-d16 training step at batch 96, fp16, img/s.
ANCHOR = 128.0


@dataclass(frozen=True)
class VARSide:
    """One implementation as the harness drives it.

    ``teacher_forcing(indices)`` -> x_input; ``forward(labels, x_input)`` -> logits N x L x V;
    ``loss(labels, indices)`` -> the mean cross-entropy (eval mode); ``generate(labels, top_k,
    top_p)`` -> images N x 3 x H x W in [0, 1] (guidance ``CFG``); ``greedy_tokens(labels)`` ->
    the top_k=1 tokens, N x L; ``train_step(labels, indices, precision, images)`` builds one
    training step (its own optimiser); ``images`` (upstream only) makes it encode them first.
    """

    model: nn.Module
    teacher_forcing: Callable[[list[Tensor]], Tensor]
    forward: Callable[[Tensor, Tensor], Tensor]
    loss: Callable[[Tensor, list[Tensor]], Tensor]
    generate: Callable[[Tensor, int, float], Tensor]
    greedy_tokens: Callable[[Tensor], Tensor]
    train_step: Callable[..., Callable[[], None]]


def _to_unit_range(images: Tensor) -> Tensor:
    """Decoded images clamped to [-1, 1] and mapped to [0, 1], as upstream returns them."""
    return images.clamp(-1, 1).add(1).mul(0.5)


def our_side(model: VAR, tokenizer: nn.Module, recipe: VARTrainingRecipe) -> VARSide:
    """freqlat's VAR with its tokenizer, ``NextScaleObjective`` and ``recipe``'s optimiser."""
    objective = NextScaleObjective(recipe.label_smoothing)

    def generate(labels, top_k, top_p):
        tokens = model.generate(labels, cfg=CFG, top_k=top_k, top_p=top_p)
        return _to_unit_range(tokenizer.decode_indices(tokens))

    def train_step(labels, indices, precision, images=None):
        if images is not None:
            raise ValueError("our training step reads cached token maps, not images")
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = recipe.optimizer(model, batch_size=len(labels))
        scaler = grad_scaler(precision, labels.device)

        def step():
            with autocast(precision, labels.device):
                loss = objective(model, labels, indices)["loss"]
            optimizer_step(loss, optimizer, scaler, params, grad_clip=recipe.grad_clip)

        return step

    return VARSide(
        model=model,
        teacher_forcing=model.teacher_forcing_inputs,
        forward=model,
        loss=lambda labels, indices: objective(model, labels, indices)["loss"],
        generate=generate,
        greedy_tokens=lambda labels: flat_indices(
            model.generate(labels, cfg=CFG, top_k=1, top_p=0.0)
        ),
        train_step=train_step,
    )


def official_side(
    checkout: str | Path,
    vqvae: nn.Module,
    var: nn.Module,
    recipe: VARTrainingRecipe,
    cond_drop_rate: float,
) -> VARSide:
    """Upstream's VAR driven as its trainer and sampling scripts drive it. Its ``forward``
    drops labels at ``var.cond_drop_rate`` in eval mode too: that is 0 for the parity and
    the forward phase, ``cond_drop_rate`` inside its training step."""
    amp_sc, filter_params = official_var_training(checkout)
    quantize, vocab = vqvae.quantize, vqvae.vocab_size
    length = sum(pn * pn for pn in var.patch_nums)

    def loss(labels, indices):
        logits = var(labels, quantize.idxBl_to_var_input(indices))
        return F.cross_entropy(logits.view(-1, vocab), torch.cat(indices, dim=1).view(-1))

    def generate(labels, top_k, top_p):
        try:
            return var.autoregressive_infer_cfg(
                len(labels), labels, cfg=CFG, top_k=top_k, top_p=top_p
            )
        finally:  # a failed call would leave the blocks' KV caches on for what runs next
            for block in var.blocks:
                block.attn.kv_caching(False)

    def train_step(labels, indices, precision, images=None):
        names, paras, groups = filter_params(var, NO_DECAY_KEYS)
        for group in groups:  # what lr_wd_annealing sets at every step
            group["weight_decay"] = recipe.weight_decay * group["wd_sc"]
        fused = {"fused": True} if labels.is_cuda else {}  # train.py: fused=args.afuse (on)
        optimizer = torch.optim.AdamW(
            groups, lr=recipe.peak_lr(len(labels)), betas=recipe.betas, weight_decay=0, **fused
        )
        amp = amp_sc.AmpOptimizer(
            MIXED_PRECISION[precision], optimizer, names, paras, grad_clip=recipe.grad_clip
        )
        criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing, reduction="none")
        weight = torch.ones(1, length, device=labels.device) / length

        def step():
            var.cond_drop_rate = cond_drop_rate
            gt = vqvae.img_to_idxBl(images) if images is not None else indices
            targets = torch.cat(gt, dim=1)
            x_input = quantize.idxBl_to_var_input(gt)
            with amp.amp_ctx:
                logits = var(labels, x_input)
                per_token = criterion(logits.view(-1, vocab), targets.view(-1)).view(
                    len(labels), -1
                )
                step_loss = per_token.mul(weight).sum(dim=-1).mean()
            amp.backward_clip_step(stepping=True, loss=step_loss)
            logits.data.argmax(dim=-1)  # trainer.py's pred_BL, computed at every step
            var.cond_drop_rate = 0.0

        return step

    def greedy(labels):
        with silenced():
            return flat_indices(official_greedy_tokens(vqvae, var, labels, CFG))

    return VARSide(
        model=var,
        teacher_forcing=quantize.idxBl_to_var_input,
        forward=var,
        loss=loss,
        generate=generate,
        greedy_tokens=greedy,
        train_step=train_step,
    )


def paired_models(
    models: ModuleType, config: VARConfig, vae_ch: int, device: torch.device, seed: int = 0
) -> tuple[VAR, nn.Module, nn.Module, nn.Module]:
    """(our VAR, our tokenizer, official VQVAE, official VAR) on identical weights, in eval mode
    on ``device``. The official VAR is built without label dropout (see :func:`official_side`)."""
    torch.manual_seed(seed)
    vqvae, official = official_var_pair(models, config, vae_ch=vae_ch, cond_drop_rate=0.0)
    randomize([official, vqvae.quantize], seed, half_exact=False)
    tokenizer = create_tokenizer(
        "ms-vq-vae", ch=vae_ch, vocab_size=config.vocab_size, z_channels=config.latent_channels,
        patch_sizes=config.patch_sizes,
    )  # fmt: skip
    mapped, _ = map_official_state("ms-vq-vae", vqvae.state_dict())
    load_state_strict(tokenizer, mapped, "official VQVAE")
    ours = VAR(config, tokenizer)
    load_state_strict(ours, official.state_dict(), "official VAR")
    modules = (ours, tokenizer.to(device).eval(), vqvae.to(device).eval(), official)
    return tuple(m.to(device).eval() for m in modules)


def benchmark_batch(config: VARConfig, batch: int, device: torch.device, seed: int = 0):
    """A fixed (seeded) batch: labels, per-scale token maps (N x pn^2 each) and images
    (N x 3 x 16 pn_K x 16 pn_K in [-1, 1], for upstream's step as shipped)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, config.num_classes, (batch,), generator=g)
    indices = [
        torch.randint(0, config.vocab_size, (batch, pn * pn), generator=g)
        for pn in config.patch_sizes
    ]
    side = 16 * config.patch_sizes[-1]
    images = torch.rand(batch, 3, side, side, generator=g) * 2 - 1
    return labels.to(device), [i.to(device) for i in indices], images.to(device)


def parity(ours: VARSide, official: VARSide, batch) -> dict[str, list[TensorDiff]]:
    """Exact-fp32 differences: teacher-forcing input and logits, cross-entropy, greedy tokens
    and the images decoded from them."""
    labels, indices, _ = batch
    with torch.no_grad(), exact_fp32():
        x_ours, x_official = ours.teacher_forcing(indices), official.teacher_forcing(indices)
        forward = tensor_diffs(
            {"x_input": x_ours, "logits": ours.forward(labels, x_ours)},
            {"x_input": x_official, "logits": official.forward(labels, x_official)},
        )
        loss = tensor_diffs(
            {"ce": ours.loss(labels, indices)}, {"ce": official.loss(labels, indices)}
        )
        greedy = tensor_diffs(
            {"tokens": ours.greedy_tokens(labels), "images": ours.generate(labels, 1, 0.0)},
            {"tokens": official.greedy_tokens(labels), "images": official.generate(labels, 1, 0.0)},
        )
    return {"forward": forward, "loss": loss, "greedy": greedy}


def compare(
    subject: str,
    ours: VARSide,
    official: VARSide,
    batch,
    device: torch.device,
    precisions: list[str],
    iters: int,
    warmup: int,
    sample_iters: int,
    as_shipped: bool = True,
    rtol: float = PARITY_RTOL,
    top_k: int = TOP_K,
) -> list[ComparisonRow]:
    """Parity first; then, per precision, the forward and generation of both; then, per
    precision, both training steps (and upstream's as shipped; last: training changes the
    weights). ``top_k`` must not exceed the vocabulary (upstream's ``topk`` would fail)."""
    diffs = parity(ours, official, batch)
    labels, indices, images = batch
    n = len(labels)
    x_ours, x_official = ours.teacher_forcing(indices), official.teacher_forcing(indices)
    forward = Phase(
        "forward", n,
        ours=lambda: ours.forward(labels, x_ours),
        official=lambda: official.forward(labels, x_official),
        ours_outputs=lambda: {"logits": ours.forward(labels, x_ours)},
        official_outputs=lambda: {"logits": official.forward(labels, x_official)},
        parity=diffs["forward"],
    )  # fmt: skip
    generate = Phase(
        f"generate + decode (cfg {CFG:g}, top-k {top_k}, top-p {TOP_P:g})", n,
        ours=lambda: ours.generate(labels, top_k, TOP_P),
        official=lambda: official.generate(labels, top_k, TOP_P),
        ours_outputs=lambda: {"tokens": ours.greedy_tokens(labels)},
        official_outputs=lambda: {"tokens": official.greedy_tokens(labels)},
        parity=diffs["greedy"],
    )  # fmt: skip
    rows = []
    for precision in precisions:
        rows += time_phases(subject, [forward], device, precision, iters, warmup, rtol)
        rows += time_phases(subject, [generate], device, precision, sample_iters, 1, rtol)
    ours_step = TrainingStep(ours.model, lambda p: ours.train_step(labels, indices, p))
    train_parity = diffs["forward"] + diffs["loss"]
    official_step = TrainingStep(official.model, lambda p: official.train_step(labels, indices, p))
    shipped = TrainingStep(
        official.model, lambda p: official.train_step(labels, indices, p, images)
    )
    for precision in precisions:
        row = training_row(
            subject, "train", ours_step, official_step, n, device, precision, iters, warmup,
            train_parity, "random drop path and label dropout per step", rtol,
        )  # fmt: skip
        rows.append(row)
        if as_shipped:
            rows.append(
                training_row(
                    subject, "train as shipped (official encodes images)", ours_step, shipped,
                    n, device, precision, iters, warmup, [],
                    "ours: the step above, from cached tokens", rtol,
                    parity_note="upstream's VQVAE encoder runs in its step, ours reads tokens",
                    ours_measured=(row.ours_ips, row.ours_peak),
                )
            )  # fmt: skip
    return rows


def comparison_markdown(
    rows: list[ComparisonRow], device: torch.device, batches: list[int], checkout: str, vae_ch: int
) -> str:
    """The same-run comparison as a markdown section."""
    lines = [
        f"### VAR against the official code, same run, on {device_name(device)}",
        "",
        f"{datetime.date.today()}, torch {torch.__version__}, `benchmarks/bench_generators.py`; "
        f"batches {batches}. Official code: {describe_checkout(checkout)}, outside the "
        f"repository (its `VAR` and `VQVAE` with ch {vae_ch}, no flash attention or fused "
        "kernels; its `trainer.py` step with `AmpOptimizer`). Random weights (every VAR and "
        "quantiser "
        "parameter drawn from seeded noise) loaded into ours, so both hold identical weights. "
        "Parity in exact fp32 (TF32 off) on the benchmark batch (random labels and token maps): "
        "the teacher-forcing input, the logits, the cross-entropy, greedy (top-k 1) tokens and "
        "the images decoded from them; max |ours - official| / max |official| <= "
        f"{PARITY_RTOL:g} and at most {INDEX_MISMATCH_TOL:.1%} of the tokens differing, else the "
        "ratio is withheld. Generation: cfg 1.5, top-k 900 (or the vocabulary if smaller), "
        "top-p 0.96, decoded to images (ours: `generate` + `decode_indices`; upstream: "
        "`autoregressive_infer_cfg`). Training: each side's own step from cached token maps, "
        "AdamW betas (0.9, 0.95), weight decay 0.05 on the weights, clip 2, a GradScaler in "
        "fp16; fused AdamW on a GPU (upstream's train.py default; ours through "
        "`VARTrainingRecipe.optimizer`); TF32 on outside the parity check, as upstream sets it. "
        "'As shipped': upstream's step also encodes the images with its VQVAE, in float32 as "
        "in its trainer.py. Peak GiB: CUDA memory above the resident weights (and, for "
        "training, the optimiser state). Anchor (official code, H100, VAR-d16 training step at "
        f"batch 96, fp16, no flash attention, issue 13): {ANCHOR:g} img/s.",
        "",
        *comparison_table(rows),
    ]
    return "\n".join(lines) + "\n"

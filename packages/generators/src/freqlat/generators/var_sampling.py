"""Token sampling for VAR: top-k / top-p filtering and seeded multinomial draws."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

SampleGenerator = torch.Generator | Sequence[torch.Generator] | None


def filter_top_k_top_p(logits: Tensor, top_k: int = 0, top_p: float = 0.0) -> Tensor:
    """``logits`` (... x V) with every token outside the top-k / top-p set set to -inf.

    Top-k keeps the tokens whose logit is at least the k-th largest (ties with it stay); k <= 0
    keeps all, k >= V keeps all. Top-p then sorts the survivors' probabilities in ascending
    order and drops every token whose cumulative probability (its own and all smaller ones) is
    at most 1 - p, always keeping the most probable one; p <= 0 keeps all. This is
    FoundationVision/VAR ``models/helpers.py`` ``sample_with_top_k_top_p_`` without its in-place
    writes.
    """
    vocab = logits.shape[-1]
    if 0 < top_k < vocab:
        kth = logits.topk(top_k, dim=-1, largest=True, sorted=False).values.amin(-1, keepdim=True)
        logits = logits.masked_fill(logits < kth, -torch.inf)
    if top_p > 0:
        ascending, order = logits.sort(dim=-1, descending=False)
        drop = ascending.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
        drop[..., -1:] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), -torch.inf)
    return logits


def sample_tokens(
    logits: Tensor, top_k: int = 0, top_p: float = 0.0, generator: SampleGenerator = None
) -> Tensor:
    """One token per position from ``logits`` (N x l x V) after top-k / top-p filtering: N x l.

    ``generator`` is None (the global RNG), one ``torch.Generator`` for the whole batch, or a
    sequence of N generators, one per sample, which makes each sample's draws independent of
    the batch it is drawn in.
    """
    batch, length, vocab = logits.shape
    probs = filter_top_k_top_p(logits, top_k, top_p).softmax(dim=-1)
    if generator is None or isinstance(generator, torch.Generator):
        flat = torch.multinomial(probs.view(-1, vocab), 1, replacement=True, generator=generator)
        return flat.view(batch, length)
    if len(generator) != batch:
        raise ValueError(f"got {len(generator)} generators for a batch of {batch} samples")
    return torch.stack(
        [
            torch.multinomial(row, 1, replacement=True, generator=g).view(length)
            for row, g in zip(probs, generator, strict=True)
        ]
    )

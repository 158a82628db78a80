"""Top-k / top-p filtering against a direct per-token computation, and seeded draws."""

import pytest
import torch

from freqlat.generators.var_sampling import filter_top_k_top_p, sample_tokens


def _direct_keep(row: torch.Tensor, top_k: int, top_p: float) -> list[bool]:
    """Which tokens of one row survive, decided token by token from the definitions."""
    values = row.tolist()
    keep = [True] * len(values)
    if 0 < top_k < len(values):
        kth = sorted(values, reverse=True)[top_k - 1]
        keep = [v >= kth for v in values]
    if top_p > 0:
        kept = torch.tensor([v if k else float("-inf") for v, k in zip(values, keep, strict=True)])
        probs = kept.softmax(0).tolist()
        best = max(range(len(probs)), key=probs.__getitem__)
        for i, p in enumerate(probs):
            # dropped when its own mass plus that of every less likely token is <= 1 - top_p
            mass = sum(q for q in probs if q <= p)
            if keep[i] and i != best and mass <= 1 - top_p:
                keep[i] = False
    return keep


@pytest.mark.parametrize(
    ("top_k", "top_p"), [(0, 0.0), (5, 0.0), (0, 0.7), (12, 0.9), (1, 0.96), (60, 0.5)]
)
def test_filter_keeps_exactly_the_directly_computed_tokens(top_k, top_p):
    logits = torch.randn(2, 3, 40, generator=torch.Generator().manual_seed(top_k)) * 2
    filtered = filter_top_k_top_p(logits, top_k, top_p)
    for row, out in zip(logits.view(-1, 40), filtered.view(-1, 40), strict=True):
        keep = _direct_keep(row, top_k, top_p)
        assert (out > float("-inf")).tolist() == keep
        assert torch.equal(out[torch.tensor(keep)], row[torch.tensor(keep)])


def test_filter_does_not_modify_its_input():
    logits = torch.randn(1, 2, 10)
    copy = logits.clone()
    filter_top_k_top_p(logits, 3, 0.5)
    assert torch.equal(logits, copy)


def test_top_k_one_draws_the_argmax_whatever_the_generator():
    logits = torch.randn(3, 7, 20)
    for seed in range(3):
        drawn = sample_tokens(logits, 1, 0.96, torch.Generator().manual_seed(seed))
        assert torch.equal(drawn, logits.argmax(-1))


def test_per_sample_generators_draw_each_row_as_if_alone():
    logits = torch.randn(3, 5, 30)
    seeds = [4, 5, 6]
    together = sample_tokens(logits, 0, 0.0, [torch.Generator().manual_seed(s) for s in seeds])
    for i, seed in enumerate(seeds):
        alone = sample_tokens(logits[i : i + 1], 0, 0.0, [torch.Generator().manual_seed(seed)])
        assert torch.equal(together[i : i + 1], alone)


def test_draws_follow_the_filtered_distribution():
    logits = torch.tensor([[[2.0, 1.0, 0.0, -1.0]]]).expand(1, 4000, 4)
    drawn = sample_tokens(logits, 3, 0.0, torch.Generator().manual_seed(0))
    freq = torch.bincount(drawn.flatten(), minlength=4).float() / drawn.numel()
    expected = torch.tensor([2.0, 1.0, 0.0]).softmax(0)
    assert freq[3] == 0
    torch.testing.assert_close(freq[:3], expected, rtol=0, atol=0.03)

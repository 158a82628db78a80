"""VAR's lin0 LR schedule and weight-decay annealing against FoundationVision/VAR's formulas."""

import math

import pytest

from freqlat.core import annealed_weight_decay, lr_factor


def _upstream_lin0(cur_it: int, wp_it: int, max_it: int, wp0: float, wpe: float) -> float:
    # FoundationVision/VAR utils/lr_control.py lr_wd_annealing, sche_type "lin0", restated
    if cur_it < wp_it:
        return wp0 + (1 - wp0) * cur_it / wp_it
    passed = (cur_it - wp_it) / (max_it - 1 - wp_it)
    if passed < 0.05:
        return 1.0
    return wpe + (1 - wpe) * (1 - passed) / 0.95


@pytest.mark.parametrize(("warmup", "steps", "final"), [(40, 1000, 0.1), (0, 300, 0.01)])
def test_lin0_is_vars_warmup_plateau_and_linear_decay(warmup, steps, final):
    for step in range(steps):
        ours = lr_factor(step, steps=steps, warmup=warmup, schedule="lin0", min_ratio=final)
        assert ours == pytest.approx(_upstream_lin0(step, warmup, steps, 0.005, final), abs=1e-12)
    assert lr_factor(0, steps=steps, warmup=40, schedule="lin0", min_ratio=final) == 0.005
    assert lr_factor(steps - 1, steps=steps, warmup=warmup, schedule="lin0", min_ratio=final) == (
        pytest.approx(final)
    )


def test_weight_decay_anneals_by_half_cosine_from_start_to_end():
    steps = 101
    assert annealed_weight_decay(0, steps=steps, start=0.05, end=0.08) == pytest.approx(0.05)
    assert annealed_weight_decay(50, steps=steps, start=0.05, end=0.08) == pytest.approx(0.065)
    assert annealed_weight_decay(100, steps=steps, start=0.05, end=0.08) == pytest.approx(0.08)
    middle = annealed_weight_decay(25, steps=steps, start=0.05, end=0.08)
    assert middle == pytest.approx(0.08 + (0.05 - 0.08) * 0.5 * (1 + math.cos(math.pi / 4)))
    assert annealed_weight_decay(7, steps=steps, start=0.05, end=0.05) == 0.05

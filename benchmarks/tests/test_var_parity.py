"""benchmarks/var_parity.py: the same-weights comparison with the official VAR code.

The comparison itself needs a checkout of FoundationVision/VAR (``$FREQLAT_OFFICIAL_ROOT`` or
``.official/`` holding ``FoundationVision+VAR``) and is skipped without one; the suite always
replays the committed fixture instead (packages/generators/tests/test_var_parity.py).
"""

import os
from pathlib import Path

import official_code
import pytest
import var_parity

ROOT = Path(
    os.environ.get("FREQLAT_OFFICIAL_ROOT", Path(__file__).resolve().parents[2] / ".official")
)
CHECKOUT = ROOT / "FoundationVision+VAR"
HAVE_CHECKOUT = (CHECKOUT / "models" / "var.py").is_file()


def test_a_folder_without_the_official_code_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "models" / "var.py")):
        official_code.official_var_code(tmp_path)


@pytest.mark.skipif(not HAVE_CHECKOUT, reason=f"no FoundationVision/VAR checkout at {CHECKOUT}")
def test_same_weights_give_the_official_logits_and_greedy_tokens():
    tool = var_parity
    models = official_code.official_var_code(CHECKOUT)
    for config in tool.FIXTURE_CONFIGS.values():
        ours, vqvae, official = tool.paired_models(models, config, seed=1)
        figures = tool.measure(ours, vqvae, official, batch=2, seed=1)["figures"]
        assert figures["x_input_max_abs"] <= 1e-6 and figures["logits_max_abs"] <= 1e-5
        assert all(g["differing"] == 0 for g in figures["greedy"].values())

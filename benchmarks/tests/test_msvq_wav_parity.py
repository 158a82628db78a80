"""benchmarks/msvq_wav_parity.py: the same-weights comparison with the FA-VAE author's code.

The comparison itself needs a checkout of HY-Wong/VAR (``$FREQLAT_OFFICIAL_ROOT`` or
``.official/`` holding ``HY-Wong+VAR``) and is skipped without one; the suite always replays the
committed fixture instead (packages/tokenizers/tests/test_wavelet_vq_parity.py).
"""

import os
import sys
from pathlib import Path

import msvq_wav_parity
import pytest

ROOT = Path(
    os.environ.get("FREQLAT_OFFICIAL_ROOT", Path(__file__).resolve().parents[2] / ".official")
)
CHECKOUT = ROOT / "HY-Wong+VAR"
HAVE_CHECKOUT = (CHECKOUT / "models" / "vqvae_wav.py").is_file()


def test_a_folder_without_the_authors_code_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "models" / "vqvae_wav.py")):
        msvq_wav_parity.import_fork(tmp_path)


@pytest.mark.skipif(not HAVE_CHECKOUT, reason=f"no HY-Wong/VAR checkout at {CHECKOUT}")
def test_same_weights_give_the_authors_forward_tokens_and_losses():
    loaded = sys.modules.get("models")
    if loaded is not None and Path(loaded.__file__).parent != CHECKOUT / "models":
        pytest.skip(f"another 'models' package is imported ({loaded.__file__}): run this alone")
    tool = msvq_wav_parity
    fork = tool.import_fork(CHECKOUT)
    trainer, ours, loss, _ = tool.build_pair(fork, False, 1, False, "hinge")
    images = tool.parity_images(ours.image_size, 2, seed=2)
    figures, _ = tool.measure(fork, trainer, ours, loss, images)
    assert max(figures["forward_relative"].values()) < 1e-5
    assert figures["tokens_equal"] == figures["tokens"]
    assert figures["quantiser_on_fork_features_tokens_equal"]
    for terms in figures["loss"].values():
        assert abs(terms["ours"] - terms["fork"]) <= 1e-6 * abs(terms["fork"])
        assert terms["gradient_relative"] < 1e-5
    assert abs(figures["disc_loss"][0] - figures["disc_loss"][1]) < 1e-6

"""ms-vq-vae-wav against the FA-VAE author's code (HY-Wong/VAR) on identical random weights.

Builds the fork's ``VQVAE_WAV`` (``models/vqvae_wav.py``), runs it through its Lightning module's
``forward`` (``trainer_wav.py``: the pytorch_wavelets DWT, the band scales, the inverse DWT) and
its ``Loss`` (``models/loss.py``), loads the same weights into ``freqlat.tokenizers``'
``WaveletMultiScaleVQVAE`` and ``WaveletVQLoss``, and measures:

- the normalised bands, the level-1 embedding, the encoder's features, the tokens (how many
  agree; and whether our quantiser on the fork's features gives the fork's tokens exactly),
  the decoder's parts and the recomposed image (our decoder on the fork's latent);
- the autoencoder-step loss and its terms, on the fork's forward outputs, with the GAN off and
  on, for each reconstruction kind (l1, l2, focal), and the discriminator loss.

LPIPS needs VGG16 weights that cannot be downloaded here: both losses get the same
parameter-free stand-in (the per-image mean squared difference), so every other term is
compared as is. The cross-entropy discriminator's head is sized for 256 px images only in the
fork, so ``--disc-loss cross_entropy`` needs ``--full``.

``--write-fixture`` stores the weights of a small configuration (rounded to float16 before
either side sees them, so the file is small and exact), its inputs and the fork's outputs;
``packages/tokenizers/tests/test_wavelet_vq_parity.py`` replays it. Nothing of the fork's code is
in this repository: it is imported from the checkout (``models/``, ``dist.py``,
``trainer_wav.py``), with stand-ins for ``pytorch_lightning`` and ``wandb`` when they are not
installed (only ``LightningModule`` is used, as a plain module).

Examples:
  python benchmarks/msvq_wav_parity.py --official-root .official --write-fixture packages/tokenizers/tests/data/ms_vq_vae_wav_parity.safetensors
  python benchmarks/msvq_wav_parity.py --official-root .official --full --reconstruction focal --disc-loss cross_entropy
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import torch
import torch.nn.functional as F
from official_code import checkout_commit
from safetensors.torch import save_file
from skimage import data
from torch import Tensor, nn

from freqlat.tokenizers import HaarBands, WaveletComponents, WaveletVQOutput, create_tokenizer
from freqlat.tokenizers.losses import WaveletVQLossConfig, create_tokenizer_loss
from freqlat.tokenizers.official import map_official_state

CHECKOUT = "HY-Wong+VAR"

# The fixture: ms-vq-vae-wav-tiny with one level and the fork's two blocks per level (it
# hard-codes them), 16 px images, 8-channel latent, 32 codes over the scales 1..4; a two-layer
# PatchGAN with 8 base channels.
FIXTURE_MODEL = {
    "ch": 32, "ch_mult": (1,), "num_res_blocks": 2, "resolution": 4,
    "encoder_attn_resolutions": (4,), "decoder_attn_resolutions": (4,),
    "z_channels": 8, "vocab_size": 32, "patch_sizes": (1, 2, 3, 4),
}  # fmt: skip
FIXTURE_DISC = {"disc_base_channels": 8, "disc_layers": 2}
RECONSTRUCTIONS = ("l1", "l2", "focal")
# the tensors whose autoencoder-step gradients the fixture keeps (l1, GAN on)
GRADIENT_KEYS = (
    "front_end.down.weight",
    "front_end.up.weight",
    "encoder.conv_out.bias",
    "decoder.conv_out.bias",
    "quantize.embedding.weight",
)


class MeanSquarePerceptual(nn.Module):
    """The LPIPS stand-in both losses share: the per-image mean squared difference."""

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """N x 1 x 1 x 1 distances, as LPIPS returns them."""
        return (x - y).square().mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)


def import_fork(checkout: Path) -> SimpleNamespace:
    """The checkout's ``models`` package, ``models.loss`` and ``trainer_wav``."""
    for needed in ("models/vqvae_wav.py", "trainer_wav.py"):
        if not (checkout / needed).is_file():
            raise FileNotFoundError(
                f"{checkout / needed} not found: pass a checkout of HY-Wong/VAR"
            )
    loaded = sys.modules.get("models")
    if loaded is not None and Path(loaded.__file__).parent != checkout / "models":
        raise RuntimeError(f"another 'models' package is already imported: {loaded.__file__}")
    for name in ("pytorch_lightning", "wandb"):
        try:
            importlib.import_module(name)
        except ImportError:
            stand_in = ModuleType(name)
            stand_in.LightningModule = nn.Module
            sys.modules[name] = stand_in
    sys.path.insert(0, str(checkout))
    return SimpleNamespace(
        models=importlib.import_module("models"),
        loss=importlib.import_module("models.loss"),
        trainer=importlib.import_module("trainer_wav"),
    )


def fork_state_to_ours(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The fork's VQVAE_WAV state dict under our key names (its codebook-usage buffer dropped)."""
    state, _ = map_official_state("ms-vq-vae", state)  # VAR's qkv, phi and usage buffer
    renames = (
        ("downsample_wav.conv.", "front_end.down."),
        ("upsample_wav.upconv.", "front_end.up."),
    )
    for old, new in renames:
        state = {k.replace(old, new): v for k, v in state.items()}
    return state


def fork_discriminator_to_ours(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The fork's DiscriminatorHL / DiscriminatorCEL state under our key names."""
    renames = (
        ("conv_block.", "main."),
        ("classifier_head.0.", "classifier.1."),
        ("classifier_head.3.", "classifier.4."),
    )
    for old, new in renames:
        state = {k.replace(old, new): v for k, v in state.items()}
    return state


def randomize(modules: list[nn.Module], seed: int, half_exact: bool) -> None:
    """Seeded noise in every parameter: weights N(0, 1 / fan_in), norm scales 1 + N(0, 0.1^2),
    other vectors N(0, 0.1^2); ``half_exact`` rounds every value to float16 first."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            for name, param in sorted(module.named_parameters()):
                noise = torch.randn(param.shape, generator=generator)
                if param.ndim >= 2:
                    value = noise / param[0].numel() ** 0.5
                elif "norm" in name or ("conv_block" in name and name.endswith("weight")):
                    value = 1.0 + 0.1 * noise  # GroupNorm / BatchNorm scales
                else:
                    value = 0.1 * noise
                param.copy_(value.half().float() if half_exact else value)


def parity_images(size: int, batch: int, seed: int) -> Tensor:
    """Scikit-image's astronaut at ``size`` px, then uniform noise images, in [-1, 1]."""
    photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 127.5 - 1
    photo = F.interpolate(photo[None], size=(size, size), mode="area")
    noise = torch.rand(batch - 1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return torch.cat([photo, noise * 2 - 1])


@contextlib.contextmanager
def _restored_determinism():
    """The fork's quantiser switches torch's deterministic mode on; put it back afterwards."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def build_pair(fork: SimpleNamespace, full: bool, seed: int, half_exact: bool, disc_loss: str):
    """(fork trainer, our model, our loss, loss-config fields) on identical random weights."""
    if full:
        model_fields, disc_fields = {}, {}
        kwargs = dict(vocab_size=4096, z_channels=256, ch=160, ch_mult=(1, 2, 4))
        patch_sizes = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
        ours = create_tokenizer("ms-vq-vae-wav")
    else:
        model_fields, disc_fields = FIXTURE_MODEL, FIXTURE_DISC
        kwargs = {k: FIXTURE_MODEL[k] for k in ("ch", "ch_mult", "z_channels", "vocab_size")}
        patch_sizes = FIXTURE_MODEL["patch_sizes"]
        ours = create_tokenizer("ms-vq-vae-wav-tiny", **FIXTURE_MODEL)
    with contextlib.redirect_stdout(io.StringIO()):  # the constructors print their config
        vae = fork.models.VQVAE_WAV(
            test_mode=False, share_quant_resi=4, v_patch_nums=patch_sizes, in_channels=48, **kwargs
        )
        fork.loss.LPIPS = lambda path: MeanSquarePerceptual()
        args = SimpleNamespace(
            rec_loss_fn="l1", disc_loss_fn=disc_loss, lc=1.0, lp=0.5, ld=1.0, wavelet="haar",
            out_channels=disc_fields.get("disc_base_channels", 64),
            n_layers=disc_fields.get("disc_layers", 3), disc_start_ep=1,
        )  # fmt: skip
        trainer = fork.trainer.VQVAE_WAV_Trainer(vae=vae, args=args, steps_per_epoch=10)
    randomize([vae, trainer.loss.discriminator], seed, half_exact)
    ours.load_state_dict(fork_state_to_ours(vae.state_dict()))
    # the GAN starts at the fork's iteration 10 (disc_start_ep 1 x 10 steps): our step 9
    loss_fields = {"disc_loss": disc_loss, "disc_start": 9, **disc_fields}
    loss = create_tokenizer_loss(
        ours, perceptual=MeanSquarePerceptual(), config=WaveletVQLossConfig(**loss_fields)
    )
    loss.discriminator.load_state_dict(
        fork_discriminator_to_ours(trainer.loss.discriminator.state_dict())
    )
    for module in (trainer, ours, loss):
        module.train()
    return trainer, ours, loss, {"model": model_fields, "loss": loss_fields}


def _relative(ours: Tensor, theirs: Tensor) -> float:
    scale = theirs.abs().max()
    return ((ours - theirs).abs().max() / scale).item() if scale > 0 else float(ours.abs().max())


def _our_loss(loss, model: nn.Module, kind: str):
    """``loss`` with another reconstruction kind and the same discriminator."""
    config = dataclasses.replace(loss.config, reconstruction=kind)
    other = create_tokenizer_loss(model, perceptual=loss.perceptual, config=config)
    other.discriminator.load_state_dict(loss.discriminator.state_dict())
    return other.train()


def measure(fork, trainer, ours, loss, images: Tensor, reconstructions=RECONSTRUCTIONS):
    """The parity figures (see the module docstring) and the fork's tensors behind them."""
    vae, fork_loss = trainer.vae, trainer.loss
    figures: dict[str, object] = {}
    out: dict[str, Tensor] = {}
    with _restored_determinism():
        yh1, yh2, yl, emb, r1, r2, rl, remb, recon, _, f, vq = trainer(images)
        with torch.no_grad():
            features = vae.quant_conv(vae.encoder(torch.cat([emb, yh2, yl], dim=1)))
            tokens = vae.quantize.f_to_idxBl_or_fhat(features, to_fhat=False)
            f_hat = vae.quantize.f_to_idxBl_or_fhat(features, to_fhat=True)[-1]
    fork_parts = {"level1": yh1, "level2": yh2, "low": yl, "embedding": emb}
    fork_parts |= {"recon_level1": r1, "recon_level2": r2, "recon_low": rl}
    fork_parts |= {"recon_embedding": remb, "recon": recon, "vq_loss": vq}
    out |= fork_parts | {"features": features, "f_hat": f_hat}
    out |= {f"tokens.{k}": t for k, t in enumerate(tokens)}
    with torch.no_grad():
        mine = ours(images)
        quantized = ours.quantize(features)
        figures["forward_relative"] = {
            name: _relative(value, fork_parts[name])
            for name, value in flat_output(mine).items()
            if name in fork_parts
        }
        our_features = ours.quant_conv(ours.encoder(ours.front_end.encode(images)))
        figures["features_relative"] = _relative(our_features, features)
        figures["tokens"] = sum(t.numel() for t in tokens)
        figures["tokens_equal"] = sum(
            int((a.flatten(1) == b).sum()) for a, b in zip(mine.indices, tokens, strict=True)
        )
        figures["quantiser_on_fork_features_tokens_equal"] = all(
            torch.equal(a.flatten(1), b) for a, b in zip(quantized.indices, tokens, strict=True)
        )
        figures["f_hat_relative"] = _relative(quantized.quantized, f_hat)
        figures["decode_fork_latent_relative"] = _relative(ours.decode(f_hat), recon)
    # the losses on the fork's own forward outputs (its graph), GAN off (iteration 9) and on (10)
    on_fork = WaveletVQOutput(
        recon=recon, latent=f, vq_loss=vq,
        components=WaveletComponents(HaarBands(yh1, yh2, yl), HaarBands(r1, r2, rl), emb, remb),
    )  # fmt: skip
    last = vae.decoder.conv_out.weight
    named = dict(vae.named_parameters())
    params = [named[k] for k in _fork_names(GRADIENT_KEYS)]
    rec_fns = {"l1": nn.L1Loss(), "l2": nn.MSELoss(), "focal": fork.loss.focal_freq_loss}
    figures["loss"] = {}
    for kind in reconstructions:
        delattr(fork_loss, "rec_loss_fn")  # a child module or a function, by kind
        fork_loss.rec_loss_fn = rec_fns[kind]
        our_loss = _our_loss(loss, ours, kind)
        for step in (9, 10):
            torch.manual_seed(7)  # the cross-entropy head's dropout
            value, log = fork_loss(
                images, yh1, yh2, yl, emb, recon, r1, r2, rl, remb, f, vq, 0, last, step, "t"
            )
            torch.manual_seed(7)
            terms = our_loss.autoencoder_loss(
                images, on_fork, step=step - 1, decoder_last_weight=last
            )
            theirs = torch.autograd.grad(value, params, retain_graph=True)
            mine_grads = torch.autograd.grad(terms["loss"], params, retain_graph=True)
            key = f"{kind}.{step}"
            figures["loss"][key] = {
                "fork": value.item(),
                "ours": terms["loss"].item(),
                "d_weight": [float(log["t_vae_disc_weight"]), float(terms.get("d_weight", 0.0))],
                "gradient_relative": max(
                    _relative(a, b) for a, b in zip(mine_grads, theirs, strict=True)
                ),
            }
            out[f"loss.{key}"] = value
            out[f"loss.{key}.d_weight"] = torch.tensor(float(log["t_vae_disc_weight"]))
            if kind == "l1" and step == 10:
                out |= {f"grad.{k}": g for k, g in zip(GRADIENT_KEYS, theirs, strict=True)}
    torch.manual_seed(9)
    value, _ = fork_loss(
        images, yh1, yh2, yl, emb, recon, r1, r2, rl, remb, f, vq, 1, last, 10, "t"
    )
    torch.manual_seed(9)
    figures["disc_loss"] = [
        value.item(),
        loss.discriminator_loss(images, recon, step=9)["loss"].item(),
    ]
    out["disc_loss"] = value
    return figures, {k: v.detach().contiguous() for k, v in out.items()}


def flat_output(output: WaveletVQOutput) -> dict[str, Tensor]:
    """Our forward output under the names of the fork's tensors."""
    c = output.components
    return {
        "level1": c.target.level1, "level2": c.target.level2, "low": c.target.low,
        "embedding": c.embedding, "recon_level1": c.recon.level1,
        "recon_level2": c.recon.level2, "recon_low": c.recon.low,
        "recon_embedding": c.recon_embedding, "recon": output.recon, "vq_loss": output.vq_loss,
    }  # fmt: skip


def _fork_names(ours: tuple[str, ...]) -> list[str]:
    back = (("front_end.down.", "downsample_wav.conv."), ("front_end.up.", "upsample_wav.upconv."))
    names = []
    for name in ours:
        for new, old in back:
            name = name.replace(new, old)
        names.append(name)
    return names


def write_fixture(fork, checkout: Path, path: Path, batch: int = 2) -> dict:
    """Measure the fixture configuration and store weights, inputs and the fork's outputs."""
    trainer, ours, loss, fields = build_pair(
        fork, full=False, seed=0, half_exact=True, disc_loss="hinge"
    )
    images = parity_images(ours.image_size, batch, seed=1)
    figures, outputs = measure(fork, trainer, ours, loss, images)
    tensors = {f"model.{k}": v.half() for k, v in ours.state_dict().items()}
    tensors |= {f"discriminator.{k}": v for k, v in loss.discriminator.state_dict().items()}
    tensors |= {"images": images} | {f"fork.{k}": v for k, v in outputs.items()}
    metadata = {
        "fields": json.dumps(fields),
        "fork_commit": checkout_commit(checkout),
        "made_by": "benchmarks/msvq_wav_parity.py --write-fixture",
        "torch": torch.__version__,
        "figures": json.dumps(figures),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Command line: print the parity figures as JSON (and write the fixture when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-root", type=Path, help=f"folder holding {CHECKOUT}/")
    parser.add_argument("--checkout", type=Path, help="the HY-Wong/VAR checkout itself")
    parser.add_argument("--full", action="store_true", help="ms-vq-vae-wav itself at 256 px")
    parser.add_argument("--disc-loss", default="hinge", choices=("hinge", "cross_entropy"))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-fixture", type=Path)
    args = parser.parse_args(argv)
    checkout = args.checkout or (args.official_root / CHECKOUT if args.official_root else None)
    if checkout is None:
        parser.error("pass --official-root or --checkout")
    if args.disc_loss == "cross_entropy" and not args.full:
        parser.error("the fork's cross-entropy discriminator takes 256 px images only: add --full")
    fork = import_fork(checkout)
    if args.write_fixture:
        print(json.dumps(write_fixture(fork, checkout, args.write_fixture), indent=1))
        return 0
    trainer, ours, loss, _ = build_pair(fork, args.full, args.seed, False, args.disc_loss)
    images = parity_images(ours.image_size, args.batch, args.seed + 1)
    figures, _ = measure(fork, trainer, ours, loss, images)
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The official tokenizer and generator code, imported at run time from checkouts given by path.

Used by ``benchmarks/bench_tokenizers.py`` and ``benchmarks/bench_generators.py`` (with
``--official-root``) for same-run comparisons, and by the scripts that write the parity fixtures.
Nothing of the official code is in this repository: each function imports it from a checkout of
hustvl/LightningDiT, LTH14/mar, FoundationVision/VAR, CompVis/latent-diffusion (and
CompVis/taming-transformers for the VA-VAE training step) and drives it the way its own scripts
do.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import importlib.util
import io
import subprocess
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from benchlib import precision_context
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as recomputed

from freqlat.tokenizers import create_tokenizer
from freqlat.tokenizers.base import load_state_strict
from freqlat.tokenizers.official import map_official_state


@dataclass(frozen=True)
class Side:
    """One implementation in a same-run comparison, seen through the calls the harness makes.

    ``encode`` and ``decode`` are the timed calls. ``encode_outputs`` encodes and names the
    results for the parity check, with the same names on both sides (``mean``/``logvar`` of a
    posterior; ``indices``/``latent`` of the multi-scale quantiser). ``latent_key`` names the
    output that is fed to both decoders.
    """

    encode: Callable[[Tensor], object]
    decode: Callable[[Tensor], Tensor]
    encode_outputs: Callable[[Tensor], dict[str, Tensor]]
    latent_key: str


def flat_indices(indices: list[Tensor]) -> Tensor:
    """Per-scale token maps (N x pn x pn or N x pn*pn each) as one N x sum(pn^2) tensor."""
    return torch.cat([i.reshape(i.shape[0], -1) for i in indices], dim=1)


def checkout_commit(checkout: str | Path) -> str:
    """The commit the git checkout ``checkout`` is at; ``"unknown"`` when it is not the top of
    a git work tree (a folder inside another repository does not take that one's commit)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    top, commit = result.stdout.split()
    return commit if Path(top).resolve() == Path(checkout).resolve() else "unknown"


def describe_checkout(checkout: str | Path) -> str:
    """``owner/name at <commit>`` for a checkout in an ``owner+name`` folder, else its path and
    commit: what a results table says about the official code it ran."""
    folder = Path(checkout).resolve()
    name = folder.name.replace("+", "/", 1) if "+" in folder.name else str(checkout)
    return f"{name} at {checkout_commit(folder)[:12]}"


def _load_module(name: str, path: Path) -> ModuleType:
    """Import the file ``path`` as module ``name`` (once per process)."""
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        raise FileNotFoundError(f"official code file {path} not found")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _build_lightningdit(checkout: Path) -> nn.Module:
    """LightningDiT's VA-VAE: tokenizer/autoencoder.py AutoencoderKL(32, (1, 1, 2, 2, 4))."""
    try:
        import requests  # noqa: F401  (LightningDiT imports it for downloads not done here)
    except ImportError:
        sys.modules["requests"] = ModuleType("requests")
    module = _load_module(
        "freqlat_bench_official_lightningdit", checkout / "tokenizer" / "autoencoder.py"
    )
    return module.AutoencoderKL(embed_dim=32, ch_mult=(1, 1, 2, 2, 4))


def _build_mar(checkout: Path) -> nn.Module:
    """MAR's KL-16: models/vae.py AutoencoderKL(16, (1, 1, 2, 2, 4))."""
    module = _load_module("freqlat_bench_official_mar", checkout / "models" / "vae.py")
    return module.AutoencoderKL(embed_dim=16, ch_mult=(1, 1, 2, 2, 4))


def _build_var(checkout: Path) -> nn.Module:
    """VAR's VQ-VAE: models/vqvae.py VQVAE(4096 codes, 32 channels, ch 160, 4 shared phi).

    models/quant.py imports VAR's top-level ``dist``; the package's ``__init__`` would import
    the VAR transformer too, so ``models/`` is mounted as a bare package of its own name.
    """
    if "dist" not in sys.modules:
        _load_module("dist", checkout / "dist.py")
    package = "freqlat_bench_official_var_models"
    if package not in sys.modules:
        if not (checkout / "models" / "vqvae.py").is_file():
            raise FileNotFoundError(
                f"official code file {checkout / 'models' / 'vqvae.py'} not found"
            )
        shim = ModuleType(package)
        shim.__path__ = [str(checkout / "models")]
        sys.modules[package] = shim
    module = importlib.import_module(f"{package}.vqvae")
    return module.VQVAE(vocab_size=4096, z_channels=32, ch=160, test_mode=True, share_quant_resi=4)


def _kl_side(model: nn.Module) -> Side:
    """An official LDM-style AutoencoderKL (LightningDiT, MAR) as a :class:`Side`."""

    def encode_outputs(x: Tensor) -> dict[str, Tensor]:
        posterior = model.encode(x)
        return {"mean": posterior.mean, "logvar": posterior.logvar}

    return Side(model.encode, model.decode, encode_outputs, latent_key="mean")


def _var_side(model: nn.Module) -> Side:
    """VAR's VQVAE as a :class:`Side`: encode is ``img_to_idxBl`` (its tokeniser for the
    generator), decode is its training-path ``decoder(post_quant_conv(f_hat))`` (unclamped, as
    ours); parity also compares the final multi-scale latent f_hat."""

    def encode_outputs(x: Tensor) -> dict[str, Tensor]:
        f = model.quant_conv(model.encoder(x))
        indices = model.quantize.f_to_idxBl_or_fhat(f, to_fhat=False)
        latent = model.quantize.f_to_idxBl_or_fhat(f, to_fhat=True)[-1]
        return {"indices": flat_indices(indices), "latent": latent}

    return Side(
        encode=model.img_to_idxBl,
        decode=lambda z: model.decoder(model.post_quant_conv(z)),
        encode_outputs=encode_outputs,
        latent_key="latent",
    )


@dataclass(frozen=True)
class OfficialModel:
    """Where a preset's official counterpart lives and how the harness drives it."""

    checkout: str  # folder name under --official-root
    flag: str  # command-line flag naming that one checkout
    build: Callable[[Path], nn.Module]
    side: Callable[[nn.Module], Side]


OFFICIAL_MODELS = {
    "va-vae-f16d32": OfficialModel("hustvl+LightningDiT", "lightningdit", _build_lightningdit, _kl_side),
    "kl-vae-f16d16": OfficialModel("LTH14+mar", "mar", _build_mar, _kl_side),
    "ms-vq-vae": OfficialModel("FoundationVision+VAR", "var", _build_var, _var_side),
}  # fmt: skip


def official_checkouts(
    presets: list[str], root: str | Path | None, overrides: dict[str, str | Path | None]
) -> dict[str, Path]:
    """Preset -> official checkout, for the requested presets that have an official counterpart.

    A checkout comes from its own flag (``overrides[flag]``) or else ``root/<owner+name>``;
    presets with neither are left out. A named checkout that is not a directory raises
    FileNotFoundError.
    """
    found = {}
    for preset in presets:
        spec = OFFICIAL_MODELS.get(preset)
        if spec is None:
            continue
        given = overrides.get(spec.flag)
        path = Path(given) if given else (Path(root) / spec.checkout if root else None)
        if path is None:
            continue
        if not path.is_dir():
            raise FileNotFoundError(
                f"official code for {preset}: {path} is not a directory (expected a checkout of "
                f"{spec.checkout.replace('+', '/')}, given by --official-root or --{spec.flag})"
            )
        found[preset] = path
    return found


def perturb_norms(model: nn.Module, seed: int = 0, scale: float = 0.1) -> None:
    """Add seeded noise to every normalisation affine, so parity also covers them."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.add_(scale * torch.randn(param.shape, generator=generator))


def paired_models(preset: str, checkout: Path, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """(ours, official) for ``preset``: the official model built from ``checkout``, its state
    dict mapped and loaded strictly into ours, both in eval mode on ``device``. The official
    initialisation draws from torch's global generator, seeded here for repeatable weights."""
    torch.manual_seed(0)
    official = OFFICIAL_MODELS[preset].build(checkout)
    perturb_norms(official)
    mapped, _ = map_official_state(preset, official.state_dict())
    ours = create_tokenizer(preset)
    load_state_strict(ours, mapped, f"official {preset} built from {checkout}")
    return ours.to(device).eval(), official.to(device).eval()


TAMING_CHECKOUT = "CompVis+taming-transformers"
TRAINING_PARITY_NOTE = (
    "random weights differ (LPIPS, discriminator, ViT, projection) and so does the posterior "
    "noise; model parity is the encode/decode rows, loss parity a separate check"
)


def _stub_if_missing(name: str, **attributes: object) -> None:
    """Register a stand-in module ``name`` holding ``attributes``, unless ``name`` imports."""
    try:
        importlib.import_module(name)
    except ImportError:
        stub = ModuleType(name)
        for key, value in attributes.items():
            setattr(stub, key, value)
        sys.modules[name] = stub


def _flatten_spatial(x: Tensor, pattern: str) -> Tensor:
    """The one einops pattern the official VF loss uses, for when einops is not installed."""
    if pattern.replace(" ", "") != "bchw->bc(hw)":
        raise NotImplementedError(f"einops is not installed; stand-in lacks {pattern!r}")
    return x.flatten(2)


def _einops_missing(*args: object, **kwargs: object) -> Tensor:
    """Imported by the official attention module, never called on the benchmarked path."""
    raise NotImplementedError("einops is not installed; einops.repeat has no stand-in")


def official_training_checkout(
    taming: str | Path | None, official_root: str | Path | None
) -> Path | None:
    """The taming-transformers checkout for the official training step: ``taming`` (must be a
    directory), else ``official_root/CompVis+taming-transformers`` when that exists, else None."""
    if taming:
        path = Path(taming)
        if not path.is_dir():
            raise FileNotFoundError(f"--taming {path} is not a directory")
        return path
    if official_root and (Path(official_root) / TAMING_CHECKOUT).is_dir():
        return Path(official_root) / TAMING_CHECKOUT
    return None


def official_vavae_trainer(
    lightningdit: Path, taming: Path, device: torch.device, small: bool
) -> Callable[[Tensor, bool], None]:
    """One official VA-VAE training step on a batch: ``step(images, bf16)``.

    Builds LightningDiT's vavae ``ldm.models.autoencoder.AutoencoderKL`` (f16d32, the
    f16d32_vfdinov2 loss: KL 1e-6, disc weight 0.5, VF weight 0.1 adaptive, margins 0.25/0.5,
    discriminator from step 0) with its ``configure_optimizers`` and runs the body of its
    ``training_step`` (Lightning's optimiser lookup, manual backward and logging replaced by
    plain calls). Without network or the extra packages: ``pytorch_lightning`` and ``einops``
    get stand-ins when they do not import, taming's LPIPS and timm's DINOv2 ViT-L/14 get random
    weights instead of downloads (``small``: a one-block ViT for CPU smoke runs).
    """
    import timm
    import torchvision

    _stub_if_missing("pytorch_lightning", LightningModule=nn.Module)
    _stub_if_missing("einops", rearrange=_flatten_spatial, repeat=_einops_missing)
    _stub_if_missing("requests")
    for path in (lightningdit / "vavae", taming):
        if not path.is_dir():
            raise FileNotFoundError(f"official training code: {path} is not a directory")
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    lpips = importlib.import_module("taming.modules.losses.lpips")
    lpips.models = ModuleType("torchvision_models_random")
    lpips.models.vgg16 = lambda pretrained=False, **_: torchvision.models.vgg16(weights=None)
    lpips.LPIPS.load_from_pretrained = lambda self, name="vgg_lpips": None
    foundation = importlib.import_module("ldm.models.foundation_models")
    vit = {"embed_dim": 1024, "depth": 1, "num_heads": 2} if small else {}
    foundation.get_dinov2_encoder = lambda: timm.create_model(
        "vit_large_patch14_dinov2", pretrained=False, dynamic_img_size=True, **vit
    ).requires_grad_(False)
    autoencoder = importlib.import_module("ldm.models.autoencoder")
    ddconfig = dict(
        double_z=True, z_channels=32, resolution=256, in_channels=3, out_ch=3, ch=128,
        ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[16], dropout=0.0,
    )  # fmt: skip
    loss = dict(
        disc_start=0, kl_weight=1e-6, disc_weight=0.5, vf_weight=0.1, adaptive_vf=True,
        distmat_margin=0.25, cos_margin=0.5,
    )  # fmt: skip
    model = autoencoder.AutoencoderKL(
        ddconfig,
        {"target": "ldm.modules.losses.LPIPSWithDiscriminator", "params": loss},
        embed_dim=32,
        use_vf="dinov2",
        reverse_proj=True,
    ).to(device)
    model.learning_rate = 1e-4
    (ae_opt, disc_opt), _ = model.configure_optimizers()
    model.train()

    def step(images: Tensor, bf16: bool) -> None:
        with precision_context(device, "bf16" if bf16 else "fp32"):
            recon, posterior, z, aux = model(images)
            enc_last = model.encoder.conv_out.weight
            ae_loss, _ = model.loss(
                images, recon, posterior, 0, 1, last_layer=model.get_last_layer(),
                split="train", z=z, aux_feature=aux, enc_last_layer=enc_last,
            )  # fmt: skip
        ae_opt.zero_grad()
        ae_loss.backward()
        ae_opt.step()
        with precision_context(device, "bf16" if bf16 else "fp32"):
            disc_loss, _ = model.loss(
                images, recon, posterior, 1, 1, last_layer=model.get_last_layer(),
                split="train", enc_last_layer=enc_last,
            )  # fmt: skip
        disc_opt.zero_grad()
        disc_loss.backward()
        disc_opt.step()

    return step


# --------------------------------------------------------------------------------------------
# LightningDiT, the generator (hustvl/LightningDiT models/, transport/)
# --------------------------------------------------------------------------------------------

_FAIRSCALE_STUBS = (
    "fairscale",
    "fairscale.nn",
    "fairscale.nn.model_parallel",
    "fairscale.nn.model_parallel.initialize",
    "fairscale.nn.model_parallel.layers",
)


def _strip_torch_compile(module: ModuleType) -> None:
    """Replace every ``@torch.compile``-decorated function of ``module`` (and of its classes) by
    the undecorated original, so the official code runs eagerly."""

    def original(obj: object) -> object:
        return getattr(obj, "_torchdynamo_orig_callable", obj)

    for name, obj in list(vars(module).items()):
        if isinstance(obj, type) and obj.__module__ == module.__name__:
            for attr, value in list(vars(obj).items()):
                if hasattr(value, "_torchdynamo_orig_callable"):
                    setattr(obj, attr, original(value))
        elif hasattr(obj, "_torchdynamo_orig_callable"):
            setattr(module, name, original(obj))


@dataclass(frozen=True)
class LightningDiTCode:
    """The official generator code of a hustvl/LightningDiT checkout: ``models.lightningdit``
    (``LightningDiT``, ``LightningDiT_models``) and the ``transport`` package (``Sampler``,
    ``create_transport``; None when torchdiffeq does not import)."""

    models: ModuleType
    transport: ModuleType | None
    compiled: bool


def official_lightningdit_code(checkout: str | Path, compiled: bool = True) -> LightningDiTCode:
    """Import the official LightningDiT model and transport code from ``checkout``.

    Its ``models`` and ``transport`` packages are imported under their own names, with the
    checkout first on ``sys.path``. ``models/rmsnorm.py`` imports fairscale for classes the
    model does not use: fairscale gets a stand-in when it does not import. einops is needed
    (``models/pos_embed.py``), torchdiffeq and scipy for ``transport``. ``compiled=False`` strips
    the model's ``@torch.compile`` decorators (for a CPU run: the same eager code, no compiler).
    """
    root = Path(checkout)
    if not (root / "models" / "lightningdit.py").is_file():
        raise FileNotFoundError(
            f"official code file {root / 'models' / 'lightningdit.py'} not found (expected a "
            "checkout of hustvl/LightningDiT)"
        )
    for name in _FAIRSCALE_STUBS:
        _stub_if_missing(name)
    layers = sys.modules["fairscale.nn.model_parallel.layers"]
    for name in ("ColumnParallelLinear", "ParallelEmbedding", "RowParallelLinear"):
        if not hasattr(layers, name):
            setattr(layers, name, nn.Module)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    models = importlib.import_module("models.lightningdit")
    if not compiled:
        _strip_torch_compile(models)
        _strip_torch_compile(importlib.import_module("models.swiglu_ffn"))
    try:
        transport = importlib.import_module("transport")
    except ImportError:
        transport = None
    return LightningDiTCode(models, transport, compiled)


def official_euler_sampler(code: LightningDiTCode, steps: int, shift: float) -> Callable:
    """Upstream's ``Sampler(create_transport("Linear", "velocity")).sample_ode(
    sampling_method="euler", num_steps=steps, timestep_shift=shift)``."""
    if code.transport is None:
        raise ImportError("the official transport package needs torchdiffeq and scipy")
    transport = code.transport.create_transport("Linear", "velocity", None, None, None)
    sampler = code.transport.Sampler(transport)
    return sampler.sample_ode(sampling_method="euler", num_steps=steps, timestep_shift=shift)


# --------------------------------------------------------------------------------------------
# Silencing the official code's prints and progress bars inside timed calls
# --------------------------------------------------------------------------------------------


@contextmanager
def silenced():
    """Swallow stdout and stderr (the official samplers print and draw tqdm bars per call)."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


# --------------------------------------------------------------------------------------------
# LDM (CompVis/latent-diffusion ldm/)
# --------------------------------------------------------------------------------------------

LDM_CHECKOUT = "CompVis+latent-diffusion"
# Modules upstream imports at module level for models these runs never build.
_LDM_STUBS = ("taming", "taming.modules", "taming.modules.vqvae", "clip", "kornia")


@dataclass(frozen=True)
class LDMCode:
    """The official LDM code of a CompVis/latent-diffusion checkout: ``ddpm``
    (``ldm.models.diffusion.ddpm``: ``LatentDiffusion``), ``ddim`` (``DDIMSampler``) and the two
    modules that call upstream's ``checkpoint`` (``attention``, ``openaimodel``)."""

    ddpm: ModuleType
    ddim: ModuleType
    attention: ModuleType
    openaimodel: ModuleType


def _keep_on_model_device(sampler: object, name: str, value: object) -> None:
    """``DDIMSampler.register_buffer`` without its unconditional move to CUDA: the schedule stays
    on the model's device, where upstream's ``make_schedule`` already put it."""
    setattr(sampler, name, value)


def official_ldm_code(checkout: str | Path) -> LDMCode:
    """Import the official LDM model and DDIM sampler from a CompVis/latent-diffusion checkout.

    Needs omegaconf, einops and pytorch_lightning < 2 (install them outside the project). The
    modules upstream imports for other models (taming, clip, kornia) get stand-ins when they do
    not import. ``DDIMSampler.register_buffer`` is replaced so that its schedule stays on the
    model's device (upstream moves it to CUDA unconditionally; on a GPU the two are the same).
    """
    root = Path(checkout)
    if not (root / "ldm" / "models" / "diffusion" / "ddpm.py").is_file():
        raise FileNotFoundError(
            f"official code file {root / 'ldm/models/diffusion/ddpm.py'} not found (expected a "
            "checkout of CompVis/latent-diffusion)"
        )
    for name in _LDM_STUBS:
        _stub_if_missing(name)
    _stub_if_missing("taming.modules.vqvae.quantize", VectorQuantizer2=object)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    ddim = importlib.import_module("ldm.models.diffusion.ddim")
    ddim.DDIMSampler.register_buffer = _keep_on_model_device
    return LDMCode(
        ddpm=importlib.import_module("ldm.models.diffusion.ddpm"),
        ddim=ddim,
        attention=importlib.import_module("ldm.modules.attention"),
        openaimodel=importlib.import_module("ldm.modules.diffusionmodules.openaimodel"),
    )


def _autocast_safe_checkpoint(func: Callable, inputs: tuple, params: object, flag: bool) -> object:
    """Upstream's ``checkpoint(func, inputs, params, flag)`` contract (recompute ``func`` in the
    backward pass when ``flag``), through ``torch.utils.checkpoint``, which reruns ``func`` under
    the autocast state of the forward pass."""
    if not flag:
        return func(*inputs)
    return recomputed(func, *inputs, use_reentrant=False, preserve_rng_state=False)


def use_autocast_safe_checkpoint(code: LDMCode) -> None:
    """Make the official UNet trainable under bf16 autocast.

    Upstream's ``ldm/modules/diffusionmodules/util.py`` ``CheckpointFunction`` (which every
    ``BasicTransformerBlock`` uses: ``checkpoint=True`` is its default) recomputes the block in
    the backward pass outside autocast, so the recomputed float32 graph meets the bf16 inputs
    and gradients of the forward pass and the backward fails. Its successor,
    Stability-AI/stablediffusion ``ldm/modules/diffusionmodules/util.py``, records the autocast
    state in the forward pass and restores it for the recompute. The same recompute, with the
    forward's autocast state, is what this puts in place of upstream's function in the two
    modules that call it.
    """
    code.attention.checkpoint = _autocast_safe_checkpoint
    code.openaimodel.checkpoint = _autocast_safe_checkpoint


def official_unet_params(config: object) -> dict:
    """Upstream ``UNetModel``'s arguments for an ``LDMConfig`` (as cin256-v2.yaml's unet_config)."""
    heads = (
        {"num_head_channels": config.head_channels}
        if config.head_channels is not None
        else {"num_heads": config.num_heads}
    )
    return {
        "image_size": 64,
        "in_channels": config.latent_channels,
        "out_channels": config.latent_channels,
        "model_channels": config.model_channels,
        "attention_resolutions": list(config.attention_resolutions),
        "num_res_blocks": config.num_res_blocks,
        "channel_mult": list(config.channel_mult),
        "use_spatial_transformer": True,
        "transformer_depth": config.transformer_depth,
        "context_dim": config.context_dim,
        **heads,
    }


def official_embedder_params(config: object) -> dict:
    """Upstream ``ClassEmbedder``'s arguments for an ``LDMConfig`` (the null class is the last row)."""
    return {
        "n_classes": config.num_classes + 1,
        "embed_dim": config.context_dim,
        "key": "class_label",
    }


def official_latent_diffusion(code: LDMCode, model: nn.Module) -> nn.Module:
    """Upstream's ``LatentDiffusion`` shaped like our ``LDMUNet`` ``model``, holding its weights.

    Built as cin256-v2.yaml builds it (class-label cross-attention, a trainable
    ``ClassEmbedder``, the linear schedule of ``model.config.schedule``), with an identity first
    stage: the runs here start from latents. Our ``class_embedder.*`` keys become
    ``cond_stage_model.*``, the rest ``model.diffusion_model.*``; any key that does not map
    raises RuntimeError. Returned in eval mode.
    """
    c = model.config
    ldm = code.ddpm.LatentDiffusion(
        first_stage_config={"target": "ldm.models.autoencoder.IdentityFirstStage"},
        cond_stage_config={
            "target": "ldm.modules.encoders.modules.ClassEmbedder",
            "params": official_embedder_params(c),
        },
        cond_stage_key="class_label",
        cond_stage_trainable=True,
        conditioning_key="crossattn",
        unet_config={
            "target": "ldm.modules.diffusionmodules.openaimodel.UNetModel",
            "params": official_unet_params(c),
        },
        timesteps=c.schedule.num_timesteps,
        linear_start=c.schedule.linear_start,
        linear_end=c.schedule.linear_end,
        image_size=64,
        channels=c.latent_channels,
        use_ema=False,
    )
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("class_embedder."):
            state["cond_stage_model." + key[len("class_embedder.") :]] = value
        else:
            state["model.diffusion_model." + key] = value
    missing, unexpected = ldm.load_state_dict(state, strict=False)
    mapped = {k for k in ldm.state_dict() if k.startswith(("model.", "cond_stage_model."))}
    if unexpected or mapped & set(missing):
        raise RuntimeError(f"weights do not map: missing {missing}, unexpected {unexpected}")
    return ldm.eval()


# --------------------------------------------------------------------------------------------
# VAR, the generator (FoundationVision/VAR models/)
# --------------------------------------------------------------------------------------------

VAR_CHECKOUT = "FoundationVision+VAR"


def official_var_code(checkout: str | Path) -> ModuleType:
    """The checkout's ``models`` package (its ``var.py`` imports ``models.*`` and ``dist``, so it
    is imported under its own name, the checkout first on ``sys.path``; it needs
    huggingface_hub). Another top-level ``models`` already imported (LightningDiT's) raises
    RuntimeError: run the two in separate processes."""
    root = Path(checkout)
    if not (root / "models" / "var.py").is_file():
        raise FileNotFoundError(
            f"{root / 'models' / 'var.py'} not found: pass a checkout of FoundationVision/VAR"
        )
    loaded = sys.modules.get("models")
    if loaded is not None and Path(loaded.__file__).parent != root / "models":
        raise RuntimeError(f"another 'models' package is already imported: {loaded.__file__}")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("models")


def official_var_pair(
    models: ModuleType, config: object, vae_ch: int = 32, cond_drop_rate: float = 0.0
) -> tuple[nn.Module, nn.Module]:
    """(VQVAE, VAR) of the official code shaped like a ``VARConfig``, initialised as
    ``build_vae_var`` does (VQVAE width ``vae_ch``; the release has 160). ``cond_drop_rate`` is
    the VAR's label dropout, which upstream's ``forward`` applies in eval mode too (0 for
    parity; the release trains with 0.1). No flash attention or fused kernels."""
    with silenced():  # the constructors print their configuration
        vqvae = models.VQVAE(
            vocab_size=config.vocab_size, z_channels=config.latent_channels, ch=vae_ch,
            test_mode=True, share_quant_resi=4, v_patch_nums=config.patch_sizes,
        )  # fmt: skip
        var = models.VAR(
            vqvae, num_classes=config.num_classes, depth=config.depth, embed_dim=config.width,
            num_heads=config.num_heads, mlp_ratio=config.mlp_ratio,
            drop_path_rate=config.drop_path_rate, norm_eps=config.norm_eps,
            shared_aln=config.shared_adaln, cond_drop_rate=cond_drop_rate,
            attn_l2_norm=config.attn_l2_norm, patch_nums=config.patch_sizes,
            flash_if_available=False, fused_if_available=False,
        )  # fmt: skip
        var.init_weights(
            init_adaln=config.init_adaln, init_adaln_gamma=config.init_adaln_gamma,
            init_head=config.init_head, init_std=-1,
        )  # fmt: skip
    return vqvae, var


def official_var_training(checkout: str | Path) -> tuple[ModuleType, Callable]:
    """Upstream's ``utils/amp_sc.py`` (``AmpOptimizer``) and ``utils/lr_control.py``'s
    ``filter_params(model, nowd_keys)``, loaded by path (``utils`` has no ``__init__``;
    ``lr_control`` imports the checkout's ``dist``: import :func:`official_var_code` first).

    ``filter_params`` prints with ``force=True``, which upstream's ``utils/misc.py`` teaches
    ``print`` when it sets up distributed training; the returned one runs it silenced, with a
    ``print`` that takes the keyword.
    """
    root = Path(checkout) / "utils"
    amp = _load_module("freqlat_bench_official_var_amp_sc", root / "amp_sc.py")
    lr_control = _load_module("freqlat_bench_official_var_lr_control", root / "lr_control.py")

    def filter_params(model: nn.Module, nowd_keys: set[str]) -> tuple[list, list, list]:
        original = builtins.print
        builtins.print = lambda *args, force=False, **kwargs: original(*args, **kwargs)
        try:
            with silenced():
                return lr_control.filter_params(model, nowd_keys=nowd_keys)
        finally:
            builtins.print = original

    return amp, filter_params

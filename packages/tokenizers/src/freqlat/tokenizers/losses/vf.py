"""VA-VAE's vision-foundation (VF) alignment loss and its frozen foundation-model features.

The sampled latent z (N x C x h x w) is projected by a bias-free 1x1 conv to the foundation
model's width (z'), and compared with the frozen model's last-layer patch tokens f of the input
image, arranged on the same h x w grid:

- marginal cosine: mean over positions of relu(1 - m1 - cos(z'_ij, f_ij));
- marginal distance matrix: mean over all position pairs (and images) of
  relu(|S_z' - S_f| - m2), S = per-image cosine-similarity matrix between positions;
- vf = distmat_weight * mdms + cos_weight * mcos, added to the loss with an adaptive weight
  taken on the encoder's last conv weight (clamped ratio times ``weight``).

Upstream (LightningDiT) resizes 256 px inputs bilinearly to 224 for DINOv2 ViT-L/14, giving
16 x 16 tokens for the 16 x 16 latent. We resize to (h * patch, w * patch), which is exactly that
at 256 px and keeps the token grid equal to the latent grid at any other resolution.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from freqlat.metrics.weights import WeightsFile, verify_weights
from freqlat.tokenizers.losses.gan import adaptive_weight

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DINOV2_VITL14 = "vit_large_patch14_dinov2.lvd142m"
WEIGHTS_ENV = "FREQLAT_WEIGHTS"

DINOV2_WEIGHTS = WeightsFile(
    "DINOv2 ViT-L/14 (VF loss foundation model)",
    (f"{DINOV2_VITL14}.safetensors", f"{DINOV2_VITL14}.pth", "dinov2_vitl14_pretrain.pth"),
    "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth or "
    "https://huggingface.co/timm/vit_large_patch14_dinov2.lvd142m (model.safetensors)",
    sha256_note="neither Meta nor timm publishes one",
)
"""The checksum facts of the default foundation model's files. Its two releases (Meta's ``.pth``,
timm's ``.safetensors``) are different bytes, so a digest, once published, needs one spec each."""

FOUNDATION_WEIGHTS: dict[str, WeightsFile] = {DINOV2_VITL14: DINOV2_WEIGHTS}
"""Weights specs by timm model name; every file :func:`load_foundation_model` reads is checked
against its model's spec (a name without one is checked against nothing, with a warning)."""


def vf_alignment_loss(
    projected_latent: Tensor,
    features: Tensor,
    *,
    cos_margin: float,
    distmat_margin: float,
    cos_weight: float = 1.0,
    distmat_weight: float = 1.0,
) -> dict[str, Tensor]:
    """VF loss between projected latent z' and features f, both N x D x h x w.

    Returns ``vf_loss`` (weighted sum), ``vf_mcos`` and ``vf_mdms``.
    """
    if projected_latent.shape != features.shape:
        raise ValueError(
            "projected latent and foundation features must have the same N x D x h x w shape, "
            f"got {tuple(projected_latent.shape)} and {tuple(features.shape)}"
        )
    # similarities in float32 even under autocast: bf16 would blur differences below the margins
    with torch.autocast(projected_latent.device.type, enabled=False):
        z, f = projected_latent.float(), features.float()
        z_unit = F.normalize(z.flatten(2), dim=1)
        f_unit = F.normalize(f.flatten(2), dim=1)
        z_sim = torch.einsum("nci,ncj->nij", z_unit, z_unit)
        f_sim = torch.einsum("nci,ncj->nij", f_unit, f_unit)
        mdms = F.relu((z_sim - f_sim).abs() - distmat_margin).mean()
        cos = F.cosine_similarity(f, z, dim=1)
        mcos = F.relu(1.0 - cos_margin - cos).mean()
    return {
        "vf_loss": distmat_weight * mdms + cos_weight * mcos,
        "vf_mcos": mcos,
        "vf_mdms": mdms,
    }


class FoundationFeatures(nn.Module):
    """Frozen ViT (timm) that turns [-1, 1] images into an N x D x h x w grid of patch tokens.

    The image is resized bilinearly to (h * patch, w * patch) for the requested token grid h x w,
    optionally mapped to ImageNet normalisation (``normalize_input``; upstream VA-VAE feeds the
    [-1, 1] image as is), run through ``forward_features``; prefix (class/register) tokens are
    dropped. The ViT must be built with ``dynamic_img_size=True`` for grids other than its own.
    """

    def __init__(self, vit: nn.Module, *, normalize_input: bool = False) -> None:
        super().__init__()
        patch = vit.patch_embed.patch_size
        self.patch_size: tuple[int, int] = (int(patch[0]), int(patch[1]))
        self.feature_dim: int = int(vit.num_features)
        self.num_prefix_tokens: int = int(getattr(vit, "num_prefix_tokens", 1))
        self.normalize_input = normalize_input
        self.vit = vit.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> FoundationFeatures:
        """The foundation model is frozen: it stays in eval mode whatever ``mode`` says."""
        super().train(False)
        return self

    @torch.no_grad()
    def forward(self, images: Tensor, grid_size: tuple[int, int]) -> Tensor:
        """Patch-token features (N x D x h x w) of N x 3 x H x W images in [-1, 1]."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"foundation model expects N x 3 x H x W images, got {images.shape}")
        h, w = grid_size
        x = F.interpolate(
            images.float(),
            size=(h * self.patch_size[0], w * self.patch_size[1]),
            mode="bilinear",
            align_corners=False,
        )
        if self.normalize_input:
            x = ((x + 1.0) / 2.0 - self.mean) / self.std
        tokens = self.vit.forward_features(x)[:, self.num_prefix_tokens :]
        return tokens.reshape(x.shape[0], h, w, -1).permute(0, 3, 1, 2)


def default_weights_dirs() -> list[Path]:
    """Directories searched for foundation weights: ``$FREQLAT_WEIGHTS``, then ~/.cache/freqlat."""
    dirs = []
    if os.environ.get(WEIGHTS_ENV):
        dirs.append(Path(os.environ[WEIGHTS_ENV]).expanduser())
    dirs.append(Path("~/.cache/freqlat").expanduser())
    return dirs


def _weights_file_names(model_name: str, url: str) -> list[str]:
    names = [f"{model_name}.safetensors", f"{model_name}.pth"]
    if url:
        names.append(url.rsplit("/", 1)[-1])
    return names


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return state


def load_foundation_model(
    weights: str | Path | None = None,
    *,
    model_name: str = DINOV2_VITL14,
    image_size: int = 224,
    normalize_input: bool = False,
    vit_kwargs: dict[str, Any] | None = None,
) -> FoundationFeatures:
    """Build a timm ViT (default DINOv2 ViT-L/14) and load its weights from a local file.

    ``weights`` is a file (timm ``.safetensors`` from the Hugging Face hub, or the original
    DINOv2 ``.pth``); when None, ``<dir>/<model_name>.safetensors``, ``<dir>/<model_name>.pth``
    and ``<dir>/<basename of the timm download URL>`` are tried for each of
    :func:`default_weights_dirs`. The position embedding is resampled to ``image_size`` once at
    load time with the same bicubic resampling timm applies on the fly to upstream's 518 px model.
    ``vit_kwargs`` are extra ``timm.create_model`` arguments (e.g. a smaller ``depth``).
    Missing weights raise FileNotFoundError naming the files, the places searched and the URLs.
    The file found is verified (:func:`freqlat.metrics.weights.verify_weights`) against
    ``FOUNDATION_WEIGHTS[model_name]`` before the model is built: a mismatch raises
    ``WeightsVerificationError``; a file without a published checksum (DINOv2's) loads with a
    warning that gives its sha256.
    """
    import timm
    from timm.models import get_pretrained_cfg
    from timm.models.vision_transformer import checkpoint_filter_fn

    cfg = get_pretrained_cfg(model_name)
    url = cfg.url if cfg is not None else ""
    hub = f"https://huggingface.co/{cfg.hf_hub_id}" if cfg is not None and cfg.hf_hub_id else ""
    if weights is not None:
        candidates = [Path(weights).expanduser()]
    else:
        names = _weights_file_names(model_name, url)
        candidates = [d / n for d in default_weights_dirs() for n in names]
    sources = " or ".join(s for s in (url, f"{hub} (model.safetensors)" if hub else "") if s)
    spec = FOUNDATION_WEIGHTS.get(model_name) or WeightsFile(
        f"foundation model {model_name!r}", tuple(c.name for c in candidates), sources or "timm"
    )
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise FileNotFoundError(
            f"weights for foundation model {model_name!r} not found; looked for "
            f"{', '.join(str(p) for p in candidates)}. Download them from {sources or 'timm'} "
            f"and put the file in ${WEIGHTS_ENV} or ~/.cache/freqlat (or pass weights=PATH). "
            f"{spec.checksum_text()}."
        )
    verify_weights(spec, found)
    vit = timm.create_model(
        model_name.split(".")[0],
        pretrained=False,
        img_size=image_size,
        dynamic_img_size=True,
        num_classes=0,
        **(vit_kwargs or {}),
    )
    state = checkpoint_filter_fn(_read_state_dict(found), vit)
    vit.load_state_dict(state, strict=True)
    return FoundationFeatures(vit, normalize_input=normalize_input)


@dataclass
class VFLossConfig:
    """Settings of :class:`VFLoss`; defaults are VA-VAE's released config (and FA-VAE's low branch).

    ``cos_margin`` is m1 and ``distmat_margin`` m2 of VA-VAE's marginal losses (hustvl/LightningDiT
    ``vavae/ldm/modules/losses/contperceptual.py``). ``weight`` multiplies the clamped
    gradient ratio when ``adaptive`` (else it is the fixed weight). ``latent_channels`` must match
    the tokenizer (32 for VA-VAE; FA-VAE's low-branch channel count).
    """

    latent_channels: int = 32
    cos_margin: float = 0.5
    distmat_margin: float = 0.25
    cos_weight: float = 1.0
    distmat_weight: float = 1.0
    weight: float = 0.1
    adaptive: bool = True
    adaptive_weight_max: float = 1e8

    def __post_init__(self) -> None:
        if self.latent_channels < 1:
            raise ValueError(f"latent_channels must be positive, got {self.latent_channels}")
        for name in ("cos_margin", "distmat_margin", "cos_weight", "distmat_weight", "weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


class VFLoss(nn.Module):
    """VA-VAE's VF loss: trainable 1x1 projection of the latent plus a frozen foundation model.

    ``foundation`` is any module with ``feature_dim`` and ``forward(images, grid_size)`` returning
    N x feature_dim x h x w (e.g. :class:`FoundationFeatures`). The projection's parameters belong
    in the autoencoder optimiser.
    """

    def __init__(self, config: VFLossConfig, foundation: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.foundation = foundation
        self.projection = nn.Conv2d(
            config.latent_channels, int(foundation.feature_dim), kernel_size=1, bias=False
        )

    def forward(self, images: Tensor, latent: Tensor) -> dict[str, Tensor]:
        """VF terms for the encoder's input images and the sampled latent that was decoded."""
        if latent.dim() != 4 or latent.shape[1] != self.config.latent_channels:
            raise ValueError(
                f"VF loss expects an N x {self.config.latent_channels} x h x w latent, "
                f"got {tuple(latent.shape)}"
            )
        features = self.foundation(images, tuple(latent.shape[-2:]))
        projected = self.projection(latent)
        return vf_alignment_loss(
            projected,
            features,
            cos_margin=self.config.cos_margin,
            distmat_margin=self.config.distmat_margin,
            cos_weight=self.config.cos_weight,
            distmat_weight=self.config.distmat_weight,
        )

    def weight_for(self, nll_loss: Tensor, vf_loss: Tensor, encoder_last_weight: Tensor) -> Tensor:
        """Weight of ``vf_loss`` in the total: adaptive on the encoder's last layer, or fixed."""
        if not self.config.adaptive:
            return torch.tensor(self.config.weight, device=vf_loss.device)
        return adaptive_weight(
            nll_loss,
            vf_loss,
            encoder_last_weight,
            scale=self.config.weight,
            max_ratio=self.config.adaptive_weight_max,
        )

"""VAR: class-conditional next-scale prediction on the tokens of a multi-scale VQ tokenizer.

Tian et al., *Visual Autoregressive Modeling: Scalable Image Generation via Next-Scale
Prediction* (NeurIPS 2024); reference code FoundationVision/VAR ``models/var.py``,
``models/basic_var.py``, ``models/helpers.py``, ``models/__init__.py`` (``build_vae_var``).

The K token maps of a multi-scale residual quantiser (sides pn_1 < ... < pn_K) form one
sequence of L = sum pn_k^2 tokens. The first scale's input is the class embedding plus a
learned start position; the input of scale k + 1 is the quantiser's running reconstruction
after scale k, area-downsampled to pn_{k+1} and projected by ``word_embed``. A block-causal mask
lets every token see its own scale and the earlier ones. Generation runs scale by scale with a
KV cache and classifier-free guidance that ramps over the scales.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from freqlat.generators.base import Generator
from freqlat.generators.registry import register_presets
from freqlat.generators.var_blocks import AdaLNBeforeHead, AdaLNSelfAttnBlock, KVCache
from freqlat.generators.var_sampling import SampleGenerator, sample_tokens
from freqlat.tokenizers.quantizer import MultiScaleResidualQuantizer

VAR_PATCH_SIZES = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)


@dataclass(frozen=True)
class VARConfig:
    """A VAR transformer and the token space it predicts.

    ``vocab_size``, ``latent_channels`` and ``patch_sizes`` must be those of the tokenizer's
    quantiser. The released models use width 64 x depth, depth heads, drop path
    0.1 x depth / 24, L2-normalised attention and no shared AdaLN. ``class_dropout`` is the
    probability of replacing a label by the unconditional class ``num_classes`` in training.
    ``init_*`` are the initialisation multipliers of upstream's ``init_weights`` (AdaLN
    weights, the AdaLN gamma rows, the head).
    """

    depth: int = 16
    width: int = 1024
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_classes: int = 1000
    vocab_size: int = 4096
    latent_channels: int = 32
    patch_sizes: tuple[int, ...] = VAR_PATCH_SIZES
    drop_path_rate: float = 0.1 * 16 / 24
    class_dropout: float = 0.1
    attn_l2_norm: bool = True
    shared_adaln: bool = False
    norm_eps: float = 1e-6
    init_adaln: float = 0.5
    init_adaln_gamma: float = 1e-3
    init_head: float = 0.02


def var_config(depth: int, **fields: Any) -> VARConfig:
    """The published VAR-d<depth> shape: width 64 x depth, depth heads, drop path 0.1 x depth / 24."""
    return VARConfig(
        depth=depth, width=64 * depth, num_heads=depth, drop_path_rate=0.1 * depth / 24, **fields
    )


def scale_levels(patch_sizes: tuple[int, ...]) -> Tensor:
    """The scale index of every token, 1 x L (long): 0, 1, 1, 1, 1, 2, ... for sides 1, 2, 3..."""
    return torch.cat([torch.full((pn * pn,), k) for k, pn in enumerate(patch_sizes)]).view(1, -1)


def block_causal_bias(patch_sizes: tuple[int, ...]) -> Tensor:
    """The additive attention mask 1 x 1 x L x L: 0 where the key's scale is at most the
    query's, -inf elsewhere, so a token sees its own scale and the earlier ones."""
    levels = scale_levels(patch_sizes)[0]
    visible = levels.view(-1, 1) >= levels.view(1, -1)
    return torch.where(visible, 0.0, -torch.inf)[None, None].contiguous()


def _quantizer_of(tokenizer: Any) -> MultiScaleResidualQuantizer:
    quantizer = getattr(tokenizer, "quantize", tokenizer)
    if not isinstance(quantizer, MultiScaleResidualQuantizer):
        raise ValueError(
            "VAR needs a multi-scale VQ tokenizer (freqlat.tokenizers.MultiScaleVQVAE) or its "
            f"MultiScaleResidualQuantizer, got {type(tokenizer).__name__}"
        )
    return quantizer


class VAR(Generator):
    """The VAR transformer (see the module docstring); ``forward`` is the teacher-forced pass.

    The tokenizer's quantiser (codebook and phi convs) turns token maps into the next scale's
    input; it is held by reference, not as a submodule, so it is neither saved with the model
    nor moved by ``.to()``: keep it on the model's device.
    """

    architecture = "var"
    config_class = VARConfig

    def __init__(self, config: VARConfig, tokenizer: Any = None) -> None:
        super().__init__(config)
        sizes = tuple(config.patch_sizes)
        if len(sizes) < 2 or list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
            raise ValueError(f"patch_sizes must be >= 2 increasing positive sides, got {sizes}")
        width = config.width
        self.num_classes = config.num_classes
        self.patch_sizes = sizes
        self.seq_len = sum(pn * pn for pn in sizes)
        self.first_len = sizes[0] ** 2
        init_std = math.sqrt(1 / width / 3)

        self.word_embed = nn.Linear(config.latent_channels, width)
        self.class_emb = nn.Embedding(config.num_classes + 1, width)
        self.pos_start = nn.Parameter(torch.empty(1, self.first_len, width))
        self.pos_1LC = nn.Parameter(torch.empty(1, self.seq_len, width))
        self.lvl_embed = nn.Embedding(len(sizes), width)
        # Shared AdaLN: one projection of the class embedding for every block (VAR-d36-s).
        self.shared_ada_lin = (
            nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width)) if config.shared_adaln else None
        )
        # Upstream's linearly increasing drop-path rates, computed in float32 as there.
        rates = torch.linspace(0, config.drop_path_rate, config.depth, device="cpu").tolist()
        self.blocks = nn.ModuleList(
            AdaLNSelfAttnBlock(
                width,
                config.num_heads,
                config.mlp_ratio,
                rate,
                config.norm_eps,
                config.attn_l2_norm,
                config.shared_adaln,
            )
            for rate in rates
        )
        # Both are part of the released files.
        self.register_buffer("lvl_1L", scale_levels(sizes))
        self.register_buffer("attn_bias_for_masking", block_causal_bias(sizes))
        self.head_nm = AdaLNBeforeHead(width, config.norm_eps)
        self.head = nn.Linear(width, config.vocab_size)
        self._init_weights(init_std)
        self._quantizer: tuple[MultiScaleResidualQuantizer, ...] = ()
        if tokenizer is not None:
            self.set_tokenizer(tokenizer)

    @classmethod
    def build(cls, config: VARConfig, **components: Any) -> VAR:
        """A VAR of ``config``; the one component it takes is ``tokenizer`` (optional)."""
        tokenizer = components.pop("tokenizer", None)
        if components:
            raise ValueError(f"VAR takes only a tokenizer component, got {sorted(components)}")
        return cls(config, tokenizer)

    def _init_weights(self, std: float) -> None:
        """Upstream's initialisation (``VAR.__init__`` and ``VAR.init_weights``)."""
        config = self.config
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Embedding):
                    nn.init.trunc_normal_(module.weight, std=std)
                    if getattr(module, "bias", None) is not None:
                        module.bias.zero_()
            for parameter in (self.pos_start, self.pos_1LC):
                nn.init.trunc_normal_(parameter, std=std)
            self.head.weight.mul_(config.init_head)
            self.head_nm.ada_lin[-1].weight.mul_(config.init_adaln)
            depth, width = len(self.blocks), config.width
            for block in self.blocks:
                block.attn.proj.weight.div_(math.sqrt(2 * depth))
                block.ffn.fc2.weight.div_(math.sqrt(2 * depth))
                # rows: gamma1, gamma2 (the residual gates) then scales and shifts
                if config.shared_adaln:
                    block.ada_gss[:, :, 2:].mul_(config.init_adaln)
                    block.ada_gss[:, :, :2].mul_(config.init_adaln_gamma)
                else:
                    block.ada_lin[-1].weight[2 * width :].mul_(config.init_adaln)
                    block.ada_lin[-1].weight[: 2 * width].mul_(config.init_adaln_gamma)

    # -- the tokenizer ---------------------------------------------------------------------

    def set_tokenizer(self, tokenizer: Any) -> None:
        """Attach the multi-scale VQ tokenizer (or its quantiser) whose tokens this model predicts.

        ValueError when its codebook size, code width or scales differ from the config's.
        """
        quantizer = _quantizer_of(tokenizer)
        config = self.config
        theirs = (quantizer.vocab_size, quantizer.channels, tuple(quantizer.patch_sizes))
        ours = (config.vocab_size, config.latent_channels, self.patch_sizes)
        if theirs != ours:
            raise ValueError(
                f"tokenizer codebook {theirs[0]} x {theirs[1]} with scales {theirs[2]} does not "
                f"match this VAR (vocab_size {ours[0]}, latent_channels {ours[1]}, "
                f"patch_sizes {ours[2]})"
            )
        self._quantizer = (quantizer,)

    @property
    def quantizer(self) -> MultiScaleResidualQuantizer:
        """The attached tokenizer's quantiser; ValueError when none is attached."""
        if not self._quantizer:
            raise ValueError(
                "this VAR has no tokenizer: pass tokenizer= to create_generator / "
                "from_pretrained / from_official, or call set_tokenizer"
            )
        return self._quantizer[0]

    def teacher_forcing_inputs(self, indices: list[Tensor]) -> Tensor:
        """``x_input`` for :meth:`forward` from the K per-scale token maps (no gradient)."""
        with torch.no_grad():
            return self.quantizer.teacher_forcing_inputs(indices)

    # -- the teacher-forced pass ------------------------------------------------------------

    def _check_labels(self, labels: Tensor, batch: int, values: bool = True) -> None:
        """Shape and dtype always; the range only with ``values`` (it reads the labels on the
        host, which on an accelerator waits for its queue)."""
        if labels.shape != (batch,) or labels.dtype != torch.long:
            raise ValueError(f"labels must be a long tensor of {batch} class indices")
        if values and batch and (int(labels.min()) < 0 or int(labels.max()) > self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}] ({self.num_classes}: unconditional)"
            )

    def _adaln_condition(self, class_embedding: Tensor) -> Tensor:
        if self.shared_ada_lin is None:
            return class_embedding
        return self.shared_ada_lin(class_embedding).view(-1, 1, 6, self.config.width)

    def _logits(self, h: Tensor, class_embedding: Tensor) -> Tensor:
        return self.head(self.head_nm(h.float(), class_embedding).float()).float()

    def forward(self, labels: Tensor, x_input: Tensor) -> Tensor:
        """Logits N x L x V of every token given the ground truth of the earlier scales.

        ``labels``: N class indices (``num_classes`` is the unconditional class); ``x_input``:
        N x (L - pn_1^2) x latent_channels, from :meth:`teacher_forcing_inputs`. In training
        each label is replaced by the unconditional class with probability ``class_dropout``;
        in eval never (upstream drops labels in eval too).
        """
        batch = x_input.shape[0]
        expected = (batch, self.seq_len - self.first_len, self.config.latent_channels)
        if tuple(x_input.shape) != expected:
            raise ValueError(f"x_input must be N x L' x C = {expected}, got {tuple(x_input.shape)}")
        # The range of labels on an accelerator is left to the class embedding's own bounds
        # check: reading them here would stall every training step on a host sync.
        self._check_labels(labels, batch, values=labels.device.type == "cpu")
        device = x_input.device.type
        with torch.autocast(device_type=device, enabled=False):
            if self.training and self.config.class_dropout > 0:
                dropped = torch.rand(batch, device=labels.device) < self.config.class_dropout
                labels = torch.where(dropped, self.num_classes, labels)
            class_embedding = self.class_emb(labels)
            start = class_embedding.unsqueeze(1).expand(batch, self.first_len, -1)
            start = start + self.pos_start.expand(batch, self.first_len, -1)
            x = torch.cat((start, self.word_embed(x_input.float())), dim=1)
            x += self.lvl_embed(self.lvl_1L) + self.pos_1LC  # 1 x L x C, broadcast over N
        # The blocks run in the autocast dtype when autocast is on (upstream's "main_type").
        autocast = torch.is_autocast_enabled(device)
        dtype = torch.get_autocast_dtype(device) if autocast else torch.float32
        condition = self._adaln_condition(class_embedding).to(dtype)
        attn_bias = self.attn_bias_for_masking.to(dtype)
        x = x.to(dtype)
        for block in self.blocks:
            x = block(x, condition, attn_bias)
        return self._logits(x, class_embedding)

    # -- generation -------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        labels: Tensor,
        *,
        cfg: float = 1.5,
        top_k: int = 900,
        top_p: float = 0.96,
        generator: SampleGenerator = None,
    ) -> list[Tensor]:
        """Sample token maps for ``labels`` scale by scale: a list of K tensors N x pn_k^2.

        At scale k (0-based, of K) the logits are (1 + t) * cond - t * uncond with
        t = cfg * k / (K - 1), so the first scale is unguided and the last gets 1 + cfg; the
        unconditional branch uses class ``num_classes``. Tokens are drawn after top-k / top-p
        filtering; ``top_k=1`` is greedy and gives upstream's ``autoregressive_infer_cfg`` tokens
        for the same weights. ``generator``: None, one ``torch.Generator`` for the batch, or one
        per sample (then a sample's tokens do not depend on the batch it is in). Runs in eval
        mode (no drop path) whatever the module's mode. Decode with the tokenizer's
        ``decode_indices``.
        """
        quantizer = self.quantizer
        batch = labels.shape[0]
        self._check_labels(labels, batch)
        was_training = self.training
        self.eval()
        try:
            return self._generate(quantizer, labels, cfg, top_k, top_p, generator)
        finally:
            self.train(was_training)

    def _generate(
        self,
        quantizer: MultiScaleResidualQuantizer,
        labels: Tensor,
        cfg: float,
        top_k: int,
        top_p: float,
        generator: SampleGenerator,
    ) -> list[Tensor]:
        batch, channels = labels.shape[0], self.config.latent_channels
        last = len(self.patch_sizes) - 1
        unconditional = torch.full_like(labels, self.num_classes)
        class_embedding = self.class_emb(torch.cat((labels, unconditional)))
        condition = self._adaln_condition(class_embedding)
        level_position = self.lvl_embed(self.lvl_1L) + self.pos_1LC
        x = (
            class_embedding.unsqueeze(1).expand(2 * batch, self.first_len, -1)
            + self.pos_start.expand(2 * batch, self.first_len, -1)
            + level_position[:, : self.first_len]
        )
        cache = KVCache.for_depth(len(self.blocks))
        f_hat: Tensor | None = None
        tokens: list[Tensor] = []
        end = 0
        for scale, side in enumerate(self.patch_sizes):
            end += side * side
            for block, layer_cache in zip(self.blocks, cache.layers, strict=True):
                x = block(x, condition, None, layer_cache)
            logits = self._logits(x, class_embedding)
            t = cfg * (scale / last)
            logits = (1 + t) * logits[:batch] - t * logits[batch:]
            idx = sample_tokens(logits, top_k, top_p, generator)
            tokens.append(idx)
            codes = quantizer.embedding(idx).transpose(1, 2).reshape(batch, channels, side, side)
            f_hat, following = quantizer.next_autoregressive_input(scale, f_hat, codes)
            if following is not None:
                nxt = self.patch_sizes[scale + 1] ** 2
                x = self.word_embed(following.view(batch, channels, -1).transpose(1, 2))
                x = (x + level_position[:, end : end + nxt]).repeat(2, 1, 1)
        return tokens


def _presets() -> dict[str, VARConfig]:
    # Initialisation of the AdaLN gammas as in the README's training commands
    # (FoundationVision/VAR README.md: --alng=1e-3 for d16/d20, 1e-4 for d24, 1e-5 for d30).
    presets = {
        f"var-d{depth}": var_config(depth, init_adaln_gamma=gamma)
        for depth, gamma in ((16, 1e-3), (20, 1e-3), (24, 1e-4), (30, 1e-5))
    }
    # CPU variant on ms-vq-vae-tiny's tokens (256 codes, scales 1..4): depth 2, width 128.
    presets["var-tiny"] = var_config(2, vocab_size=256, patch_sizes=(1, 2, 3, 4))
    return presets


VAR_PRESETS: dict[str, VARConfig] = _presets()
register_presets(VAR, VAR_PRESETS)

"""The frequency-bias analysis of a set of tokenizers on the same images.

Every tokenizer reconstructs each batch from its posterior mode (or its quantised latent),
clamped to [-1, 1] as in ``freqlat-eval``'s deterministic protocol; the band errors, band
energies and power spectra are accumulated by :class:`freqlat.metrics.FrequencyAnalysis`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from freqlat.metrics import FrequencyAnalysis


@torch.no_grad()
def analyse_tokenizers(
    models: Mapping[str, nn.Module],
    batches: Iterable[torch.Tensor],
    levels: int = 3,
    device: str | torch.device = "cpu",
) -> FrequencyAnalysis:
    """Run every tokenizer in ``models`` on the same image batches and collect the statistics.

    Images are N x 3 x H x W in [-1, 1]. Reconstructions are ``model(x, sample=False).recon``
    clamped to [-1, 1]; latents are ``.latent`` of the same call.
    """
    if not models:
        raise ValueError("no tokenizers to analyse")
    device = torch.device(device)
    for model in models.values():
        model.to(device).eval()
    analysis = FrequencyAnalysis(levels)
    for images in batches:
        images = images.to(device).float()
        recons, latents = {}, {}
        for name, model in models.items():
            output = model(images, sample=False)
            recons[name] = output.recon.float().clamp(-1.0, 1.0)
            latents[name] = output.latent
        analysis.update(images, recons, latents)
    if analysis.num_images == 0:
        raise ValueError("no images were given")
    return analysis

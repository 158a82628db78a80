"""What a tokenizer behind the two-level Haar front end shares: its shape facts and width check.

The FA-VAE author's wavelet tokenizers (``kl-vae-wav-f16d16``, ``ms-vq-vae-wav``) run an
encoder/decoder backbone on the front end's coefficients (48 channels at a quarter of the image
size), so the images have the front end's channels and the downsampling is the front end's 4
times the backbone's factor.
"""

from __future__ import annotations

from typing import Any

from freqlat.tokenizers.haar_front_end import HaarFrontEnd


class HaarFrontEndTokenizer:
    """Mixin (before the tokenizer class in the bases) for a model with ``config.front_end`` and
    ``config.backbone``; call :meth:`attach_front_end` in ``__init__``."""

    config: Any
    front_end: HaarFrontEnd

    @staticmethod
    def check_backbone_width(config: Any) -> None:
        """Raise ValueError unless the backbone takes the front end's coefficient channels."""
        expected = config.front_end.coefficient_channels
        if config.backbone.in_channels != expected:
            raise ValueError(
                f"the backbone takes the front end's {expected} coefficient channels, "
                f"got in_channels={config.backbone.in_channels}"
            )

    def attach_front_end(self) -> None:
        """Build ``self.front_end`` from ``self.config.front_end``."""
        self.front_end = HaarFrontEnd(self.config.front_end)

    @property
    def image_channels(self) -> int:
        """Channels of the images (3)."""
        return self.config.front_end.image_channels

    @property
    def downsample(self) -> int:
        """Image side / latent side: the front end's 4 times the backbone's factor."""
        return HaarFrontEnd.downsample * self.config.backbone.downsample

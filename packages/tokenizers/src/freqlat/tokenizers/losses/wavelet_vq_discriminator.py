"""The FA-VAE author's PatchGAN of the wavelet MS-VQ-VAE (HY-Wong/VAR ``models/discriminator.py``).

``DiscriminatorHL`` (hinge) and ``DiscriminatorCEL`` (cross-entropy) share one convolutional
trunk: a 4x4 stride-2 conv (no norm), ``n_layers - 1`` 4x4 stride-2 convs with BatchNorm whose
width doubles up to 8x, then one 4x4 stride-1 conv with BatchNorm that keeps the width of the
last stride-2 conv (256 channels for 3 layers and 64 base channels; taming's
``NLayerDiscriminator``, :class:`freqlat.tokenizers.losses.NLayerDiscriminator`, doubles it to
512), each followed by LeakyReLU(0.2). The hinge variant ends in a 4x4 conv to a one-channel
logit map; the cross-entropy variant flattens the trunk's map into a classifier head
(Linear, LeakyReLU(0.2), Dropout(0.5), Linear to one logit per image), so its input size is
fixed (``image_size``).

Weights start as the author's ``weights_init``: conv and linear weights N(0, 0.02), BatchNorm
N(1, 0.02) and 0, linear biases 0. The author's training script disables PyTorch's
``reset_parameters`` globally before building the discriminator, which leaves the biases of its
first and last conv uninitialised memory; here they keep PyTorch's default initialisation.
"""

from __future__ import annotations

from torch import Tensor, nn

from freqlat.tokenizers.losses.gan import check_discriminator_input, init_discriminator_weights

HEADS = ("patch", "classifier")


def _init_weights(module: nn.Module) -> None:
    init_discriminator_weights(module)
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)


class WaveletVQDiscriminator(nn.Module):
    """The author's PatchGAN (see the module): ``head="patch"`` gives N x 1 x h x w logits,
    ``head="classifier"`` N x 1 logits for ``image_size`` x ``image_size`` inputs."""

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        n_layers: int = 3,
        head: str = "patch",
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        if in_channels < 1 or base_channels < 1 or n_layers < 2:
            raise ValueError(
                "in_channels and base_channels must be positive and n_layers >= 2, got "
                f"{in_channels}, {base_channels}, {n_layers}"
            )
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.in_channels = in_channels
        self.n_layers = n_layers
        min_size = 3 * 2**n_layers  # as check_discriminator_input asks
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += self._normed_conv(base_channels * prev, base_channels * mult, stride=2)
        # the author's stride-1 layer reuses the last loop's multiplier: the width stays
        layers += self._normed_conv(base_channels * mult, base_channels * mult, stride=1)
        width = base_channels * mult
        self.head = head
        self.image_size = image_size
        if head == "patch":
            layers.append(nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=1))
            self.main = nn.Sequential(*layers)
            self.classifier = None
        else:
            if image_size is None or image_size < min_size or image_size % 2**n_layers:
                raise ValueError(
                    f"the classifier head needs the image size, a multiple of {2**n_layers} "
                    f"and at least {min_size}; got {image_size}"
                )
            side = image_size // 2**n_layers - 1
            self.main = nn.Sequential(*layers)
            self.classifier = nn.Sequential(
                nn.Flatten(),
                nn.Linear(width * side * side, width),
                nn.LeakyReLU(0.2, True),
                nn.Dropout(p=0.5),
                nn.Linear(width, 1),
            )
        self.apply(_init_weights)

    @staticmethod
    def _normed_conv(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
        # bias is redundant before BatchNorm's affine shift
        return [
            nn.Conv2d(in_channels, out_channels, 4, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.2, True),
        ]

    def forward(self, x: Tensor) -> Tensor:
        """Real/fake logits of N x in_channels x H x W images (a map, or one per image)."""
        check_discriminator_input(x, self.in_channels, self.n_layers)
        if self.classifier is None:
            return self.main(x)
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"the classifier head takes {self.image_size} x {self.image_size} images, "
                f"got {tuple(x.shape[-2:])}"
            )
        return self.classifier(self.main(x))

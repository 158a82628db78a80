"""How much fine detail a set of images has, measured against real images: the high-frequency
power ratio of their radially averaged power spectra.

Definition (docs/reproduction.md, "The high-frequency power ratio"):

1. Every image, as float in [-1, 1] (uint8 images ``u`` become ``u / 127.5 - 1``), gives one
   radially averaged power spectrum per colour channel,
   :func:`freqlat.wavelets.radial_power_spectrum`: the power ``|FFT2(x)|^2 / (H W)`` of every
   coefficient, averaged over the coefficients whose radius rounds to bin ``r``, for
   ``r = 0 ... S / 2`` with ``S = min(H, W)``; bin ``r`` lies at ``r / S`` cycles per pixel.
2. The spectrum ``P(r)`` of a set is the mean over its images and channels
   (:class:`RadialSpectrum`).
3. The high band is the upper half of the frequency axis: the bins above a quarter cycle per
   pixel, ``S / 4 < r <= S / 2`` (:func:`high_band`).
4. ``ratio = sum_high P_samples(r) / sum_high P_reference(r)`` (:func:`high_frequency_ratio`):
   1.0 means as much high-frequency power as the reference images, below 1 less (blurrier),
   above 1 more (sharper, or noise).

The sum runs over bins with equal weight, so it is the area under the plotted spectrum over the
upper half of its frequency axis. Constant offsets only move the DC bin, so the uint8 conversion
does not matter as long as both sets use the same one.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from freqlat.metrics.accumulators import _distributed
from freqlat.wavelets import radial_frequencies, radial_power_spectrum

HIGH_FREQUENCY_DEFINITION = (
    "radially averaged power spectra (|FFT2|^2 / (H W) per coefficient, mean over the "
    "coefficients of each integer radius bin r = 0 ... S/2, S = min(H, W)), averaged over images "
    "and colour channels of images in [-1, 1] (uint8 u as u / 127.5 - 1); ratio of the summed "
    "spectrum over the upper half of the frequencies (S/4 < r <= S/2, above 0.25 cycles per "
    "pixel) of the samples to that of the reference images: 1.0 = as much detail as real images"
)
"""One sentence that defines the ratio, for the protocol lines under a table."""


def as_signed_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 images ``u`` as ``u / 127.5 - 1`` in float64; float images pass as they are."""
    if images.dtype == torch.uint8:
        return images.to(torch.float64) / 127.5 - 1.0
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")
    return images


class RadialSpectrum:
    """The mean radially averaged power spectrum of an image set (an accumulator).

    ``update`` adds N x C x H x W images (uint8, or float in [-1, 1]) of one size; ``merge`` and
    ``all_reduce`` combine sets; ``compute`` returns the ``(S // 2 + 1,)`` float64 mean spectrum
    over every image and channel seen, on the frequencies of :attr:`frequencies`. The sums live
    on ``device`` (a CUDA device under NCCL).
    """

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.image_size: tuple[int, int] | None = None
        self.total: torch.Tensor | None = None
        self.count = torch.zeros((), dtype=torch.float64, device=self.device)

    def _check_size(self, size: tuple[int, int]) -> None:
        if self.image_size is not None and size != self.image_size:
            raise ValueError(
                f"all images of a spectrum must have one size: got {size[0]} x {size[1]} after "
                f"{self.image_size[0]} x {self.image_size[1]}"
            )
        self.image_size = size

    def update(self, images: torch.Tensor) -> None:
        """Add a batch of images (uint8 or float, N x C x H x W)."""
        x = as_signed_images(images.to(self.device))
        self._check_size((int(x.shape[-2]), int(x.shape[-1])))
        spectra = radial_power_spectrum(x).mean(dim=1).sum(dim=0)
        self.total = spectra if self.total is None else self.total + spectra
        self.count += x.shape[0]

    def merge(self, other: RadialSpectrum) -> None:
        """Add another accumulator's images (of the same size) to this one."""
        if other.total is None:
            return
        self._check_size(other.image_size)
        total = other.total.to(self.device)
        self.total = total if self.total is None else self.total + total
        self.count += other.count.to(self.device)

    def all_reduce(self) -> None:
        """Sum over every rank (each rank must have seen images of the same size)."""
        if not _distributed():
            return
        sizes = torch.tensor(list(self.image_size or (0, 0)), device=self.device)
        gathered = [torch.zeros_like(sizes) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, sizes)
        known = {tuple(int(v) for v in s) for s in gathered} - {(0, 0)}
        if len(known) > 1:
            raise ValueError(f"ranks hold images of different sizes: {sorted(known)}")
        if not known:
            return
        self.image_size = known.pop()
        if self.total is None:
            self.total = torch.zeros(
                min(self.image_size) // 2 + 1, dtype=torch.float64, device=self.device
            )
        dist.all_reduce(self.total)
        dist.all_reduce(self.count)

    @property
    def frequencies(self) -> torch.Tensor:
        """The frequency of every bin in cycles per pixel (0 ... 0.5), float64."""
        if self.image_size is None:
            raise ValueError("the spectrum is empty: call update() first")
        return radial_frequencies(*self.image_size)

    def compute(self) -> torch.Tensor:
        """The mean spectrum over every image and channel seen, ``(S // 2 + 1,)`` float64 (CPU)."""
        if self.total is None or float(self.count) == 0:
            raise ValueError("the spectrum is empty: call update() first")
        return (self.total / self.count).cpu()


def high_band(frequencies: torch.Tensor) -> torch.Tensor:
    """Mask of the bins in the upper half of the frequency axis: above 0.25 cycles per pixel."""
    return frequencies > 0.25


def high_frequency_ratio(samples: RadialSpectrum, reference: RadialSpectrum) -> float:
    """Summed high-band spectrum of ``samples`` over that of ``reference`` (module docstring).

    Both sets must have images of the same size (the same frequency bins); ValueError if not.
    """
    if samples.image_size != reference.image_size:
        raise ValueError(
            f"the samples ({samples.image_size}) and the reference images "
            f"({reference.image_size}) differ in size: their spectra have different bins"
        )
    mask = high_band(samples.frequencies)
    reference_power = float(reference.compute()[mask].sum())
    if reference_power <= 0:
        raise ValueError("the reference images have no power above 0.25 cycles per pixel")
    return float(samples.compute()[mask].sum()) / reference_power

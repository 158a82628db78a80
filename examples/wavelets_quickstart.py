"""Split real photographs into FA-VAE's frequency branches and print the FA-VAE README's band errors."""

import numpy as np
import torch
from skimage import data

from freqlat.wavelets import band_mse, haar_merge, haar_split

photos = [data.astronaut(), data.coffee(), data.chelsea()]
batch = np.stack([p[:256, :256] for p in photos]).astype(np.float32) / 127.5 - 1.0
x = torch.from_numpy(batch).permute(0, 3, 1, 2)  # 3 x 3 x 256 x 256 in [-1, 1]

low, high = haar_split(x)  # FA-VAE branch inputs: LL/2 and the 9 detail channels / 2
print(f"low branch {tuple(low.shape)}, high branch {tuple(high.shape)}")
print(f"split/merge round-trip error: {(haar_merge(low, high) - x).abs().max():.2e}")

noisy = (x + 0.05 * torch.randn_like(x)).clamp(-1, 1)
low_err, high_err = band_mse(noisy, x)
recon = torch.mean((noisy - x) ** 2)
print(f"noisy copy: Recon {recon:.5f}  Low {low_err:.5f}  High {high_err:.5f}")
print(f"(Low + 3 * High) / 4 = {(low_err + 3 * high_err) / 4:.5f}  (equals Recon)")

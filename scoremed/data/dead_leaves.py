"""Dead-leaves images: generic image structure to mix into any training set.

A dead-leaves image is a stack of occluding discs (Matheron's model; used to pretrain
restoration networks by Achddou et al. 2021): radii follow a power law p(r) ∝ r^-3 between
``r_min`` and ``r_max`` pixels, which makes the image statistically scale invariant like
real scenes, and each disc has one gray level (one colour for C = 3). On top of that, per
image:

- contrast: leaf values m + c (u - 1/2) with c log-uniform in [0.03, 1] (low-contrast
  images like soft tissue in a CT window as well as full-range ones);
- texture (half of the images): each leaf adds its own multiple (0-25 % of c) of one
  smooth random field of unit standard deviation, so textures end at the leaf edges;
- a Gaussian blur of 0.3-1.2 px (the partial-volume edges of a real acquisition).

:class:`WithDeadLeaves` replaces a share of a data set's items by such images of the same
shape (``data.dead_leaves`` in a training config).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch.utils.data import Dataset

from scoremed.errors import InputError


def leaf_radii(rng: np.random.Generator, n: int, r_min: float, r_max: float) -> np.ndarray:
    """``n`` radii (pixels) with density ∝ r^-3 on [r_min, r_max] (inverse transform of its CDF)."""
    u = rng.random(n)
    return (r_min ** -2 - u * (r_min ** -2 - r_max ** -2)) ** -0.5


def dead_leaves(rng: np.random.Generator, shape: tuple[int, int, int], r_min: float = 3.0,
                r_max: float = 120.0) -> np.ndarray:
    """One float32 dead-leaves image (C, H, W) in [0, 1] (see the module docstring).

    Leaves are laid front to back: each disc only covers pixels no nearer disc covers, and
    the image is done when every pixel is covered.
    """
    c, h, w = (int(s) for s in shape)
    contrast = float(np.exp(rng.uniform(np.log(0.03), 0.0)))
    mean = rng.uniform(contrast / 2, 1 - contrast / 2, c)
    texture_amplitude = 0.25 * contrast if rng.random() < 0.5 else 0.0
    texture = gaussian_filter(rng.standard_normal((h, w)), rng.uniform(0.7, 2.5), mode="wrap")
    texture /= max(float(texture.std()), 1e-12)
    image = np.zeros((c, h, w))
    free = np.ones((h, w), dtype=bool)
    remaining = h * w
    while remaining:
        for r in leaf_radii(rng, 256, r_min, r_max):
            y, x = rng.uniform(-r, h + r), rng.uniform(-r, w + r)
            r0, r1 = max(int(y - r), 0), min(int(y + r) + 1, h)
            c0, c1 = max(int(x - r), 0), min(int(x + r) + 1, w)
            if r0 >= r1 or c0 >= c1:
                continue
            rows, cols = np.ogrid[r0:r1, c0:c1]
            disc = ((rows - y) ** 2 + (cols - x) ** 2 <= r * r) & free[r0:r1, c0:c1]
            if not disc.any():
                continue
            value = mean + contrast * (rng.random(c) - 0.5)
            amplitude = texture_amplitude * rng.random()
            image[:, r0:r1, c0:c1][:, disc] = value[:, None] + amplitude * texture[r0:r1, c0:c1][disc]
            free[r0:r1, c0:c1][disc] = False
            remaining -= int(disc.sum())
            if not remaining:
                break
    blur = rng.uniform(0.3, 1.2)
    image = gaussian_filter(image, (0, blur, blur), mode="nearest")
    return np.clip(image, 0.0, 1.0).astype(np.float32)


class WithDeadLeaves(Dataset):
    """``dataset`` with a share of its items replaced by dead-leaves images of the same shape.

    Item i is a dead-leaves image with probability ``share`` (drawn from (seed, i), so the
    choice and the image are fixed per index), else ``dataset[i]``. Images take the shape
    (C, H, W) of the data set's first item.
    """

    def __init__(self, dataset: Dataset, share: float, seed: int = 0):
        if not 0.0 <= share < 1.0:
            raise InputError(f"data.dead_leaves: expected a share in [0, 1), got {share!r}")
        self.dataset, self.share, self.seed = dataset, float(share), int(seed)
        self.shape = tuple(dataset[0].shape)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng((self.seed, 0x1EAF, int(index)))
        if rng.random() >= self.share:
            return self.dataset[index]
        return torch.from_numpy(dead_leaves(rng, self.shape))

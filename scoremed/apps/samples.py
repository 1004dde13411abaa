"""Unconditional samples written as a PNG grid and a .npy array."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from scoremed.io.atomic import atomic_write
from scoremed.io.images import save_png


def image_grid(images: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """(N, C, H, W) -> one (C, rows*(H+pad)-pad, cols*(W+pad)-pad) tiling on white, nearly square."""
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.ones(c, rows * (h + pad) - pad, cols * (w + pad) - pad, dtype=images.dtype, device=images.device)
    for i, image in enumerate(images):
        r, q = divmod(i, cols)
        grid[:, r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = image
    return grid


def write_samples(samples: torch.Tensor, out: str | Path) -> Path:
    """``out/samples.png`` (grid, clamped to [0, 1]) and ``out/samples.npy`` (N, C, H, W); returns ``out``."""
    samples = samples.detach().clamp(0, 1).cpu()
    out = Path(out)
    save_png(out / "samples.png", image_grid(samples))
    atomic_write(out / "samples.npy", lambda path: np.save(path, samples.numpy()), suffix=".npy")
    return out

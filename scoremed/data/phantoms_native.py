"""``ct-phantom`` at native resolution: 512 x 512 procedural CT slices (pixel ~0.75 mm, FOV ~380 mm)."""
from __future__ import annotations

import numpy as np

from scoremed.data.phantoms import render_phantom

NATIVE_SIZE = 512


def render_native(rng: np.random.Generator) -> np.ndarray:
    """One native phantom (512, 512) float64 in [0, 1] drawn with ``rng``."""
    return render_phantom(rng, NATIVE_SIZE)

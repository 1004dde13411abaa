"""Fine structure for the native ``ct-phantom`` slices (512 x 512, HU, pixel ~0.75 mm).

Every function takes an HU image (n, n) float64 and modifies it in place where its
tissue masks say (fractions in [0, 1] from the painted label map), drawing from ``rng``:

- :func:`trabecular_bone`: bone is split into a cortical rim (1-3 px) and an interior of
  marrow crossed by a trabecular network (ridges along the zero set of smoothed noise);
- :func:`vessel_tree`: a branching tree of tubes (radius halving over ~6 generations);
- :func:`lung_parenchyma`: correlated density fluctuations and a gravity gradient;
- :func:`fascia`: thin soft-tissue arcs in subcutaneous fat, fat septa between muscles;
- :func:`ct_noise`: correlated (ramp-filtered, apodised) noise of a given HU standard deviation.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_erosion, gaussian_filter


def smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise with unit standard deviation."""
    field = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-12)


def trabecular_bone(hu: np.ndarray, bone: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cortical rim + trabecular interior in ``bone`` (fraction map); returns the interior mask."""
    solid = bone > 0.5
    interior = binary_erosion(solid, iterations=int(rng.integers(1, 4)))
    if not interior.any():
        return interior
    rows, cols = np.nonzero(interior)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    field = smooth_noise(rng, hu[box].shape, rng.uniform(1.3, 2.2))
    network = np.clip(1.0 - np.abs(field) / rng.uniform(0.3, 0.5), 0.0, 1.0)
    marrow, trabecula = rng.uniform(-60, 80), rng.uniform(500, 900)
    inner = interior[box]
    hu[box][inner] = (marrow + (trabecula - marrow) * network)[inner]
    rim = solid & ~interior
    hu[rim] = np.maximum(hu[rim], rng.uniform(800, 1200))
    return interior


def _segments(rng: np.random.Generator, start, direction, radius: float, depth: int, out: list) -> None:
    """Append (p0, p1, r) tube segments of a binary tree (pixel units) to ``out``."""
    stack = [(np.asarray(start, float), np.asarray(direction, float), radius, depth)]
    while stack:
        p, d, r, k = stack.pop()
        if r < 0.5 or k == 0:
            continue
        d = d / np.linalg.norm(d)
        q = p + d * (2.0 + r * rng.uniform(4.0, 8.0))
        out.append((p, q, r))
        for sign in (-1.0, 1.0):
            angle = sign * rng.uniform(0.3, 0.75)
            c, s = np.cos(angle), np.sin(angle)
            stack.append((q, np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]]), r * rng.uniform(0.68, 0.85),
                          k - 1))


def vessel_tree(shape, start, direction, radius: float, rng: np.random.Generator, depth: int = 7) -> np.ndarray:
    """Partial-volume map (n, n) in [0, 1] of a branching vessel tree from ``start`` (row, col)."""
    segments: list = []
    _segments(rng, start, direction, radius, depth, segments)
    out = np.zeros(shape)
    n0, n1 = shape
    for p, q, r in segments:
        lo = np.floor(np.minimum(p, q) - r - 1).astype(int).clip(0, None)
        hi = np.ceil(np.maximum(p, q) + r + 2).astype(int).clip(None, [n0, n1])
        if np.any(hi <= lo):
            continue
        rr, cc = np.mgrid[lo[0]:hi[0], lo[1]:hi[1]].astype(float)
        v = q - p
        t = np.clip(((rr - p[0]) * v[0] + (cc - p[1]) * v[1]) / max(float(v @ v), 1e-12), 0.0, 1.0)
        dist = np.hypot(rr - p[0] - t * v[0], cc - p[1] - t * v[1])
        sub = out[lo[0]:hi[0], lo[1]:hi[1]]
        np.maximum(sub, np.clip(r + 0.5 - dist, 0.0, 1.0), out=sub)
    return out


def lung_parenchyma(hu: np.ndarray, lung: np.ndarray, rng: np.random.Generator) -> None:
    """Correlated density fluctuations (10-35 HU) and a posterior gradient (0-80 HU) in ``lung``."""
    n = hu.shape[0]
    texture = rng.uniform(10, 35) * smooth_noise(rng, hu.shape, rng.uniform(0.8, 2.0))
    texture += rng.uniform(5, 20) * smooth_noise(rng, hu.shape, rng.uniform(3.0, 6.0))
    gradient = rng.uniform(0, 80) * (np.arange(n)[:, None] / n)
    hu += lung * (texture + gradient)


def fascia(hu: np.ndarray, rho: np.ndarray, phi: np.ndarray, fat: np.ndarray, soft: np.ndarray,
           fat_edge: float, pixel: float, rng: np.random.Generator) -> None:
    """Fascia arcs (soft tissue, ~1 px) in the subcutaneous fat and fat septa across the muscle wall.

    ``rho``/``phi``: elliptic body coordinates (1 on the outline); ``fat_edge``: inner edge of
    the subcutaneous fat in ``rho``; ``pixel``: one pixel in ``rho`` units.
    """
    soft_hu, fat_hu = rng.uniform(20, 50), rng.uniform(-110, -80)
    near = np.nonzero((rho > fat_edge - 0.07) & (rho < 0.98))  # work on the body wall only
    r, p, f, s, h = rho[near], phi[near], fat[near], soft[near], hu[near]
    inner, outer = fat_edge + 2 * pixel, 0.97 - 2 * pixel
    for _ in range(rng.integers(1, 4) if outer > inner else 0):
        r0 = rng.uniform(inner, outer) + 0.3 * (outer - inner) * np.sin(rng.integers(2, 6) * p + rng.uniform(0, 6.3))
        start, span = rng.uniform(-np.pi, np.pi), rng.uniform(0.8, 2.5)
        line = np.clip(1.0 - np.abs(r - r0) / (0.6 * pixel), 0.0, 1.0) * (np.mod(p - start, 2 * np.pi) < span) * f
        h += line * (soft_hu - h)
    ring = (r > fat_edge - 0.06) & (r < fat_edge)
    for angle in rng.uniform(-np.pi, np.pi, rng.integers(4, 10)):
        across = np.abs(np.mod(p - angle + np.pi, 2 * np.pi) - np.pi) * r
        h += np.clip(1.0 - across / (0.7 * pixel), 0.0, 1.0) * ring * s * (fat_hu - h)
    hu[near] = h


def ct_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Correlated CT-like noise (HU) with standard deviation ``sigma``.

    White noise shaped by the filtered-back-projection noise power spectrum
    NPS(f) ~ |f| exp(-(|f| / f_c)^2) (ramp filter times a smooth apodisation; f in
    cycles/pixel, f_c drawn in [0.15, 0.4]): grainy, with no power at zero frequency.
    """
    fy, fx = np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :]
    f = np.hypot(fy, fx)
    amplitude = np.sqrt(f * np.exp(-(f / rng.uniform(0.15, 0.4)) ** 2))
    noise = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * amplitude, s=shape)
    return noise * (sigma / max(float(noise.std()), 1e-12))

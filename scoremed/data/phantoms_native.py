"""``ct-phantom`` at native resolution: 512 x 512 procedural CT slices (pixel ~0.75 mm, FOV ~380 mm).

A native phantom is painted like the fixed-size ones (:mod:`.phantoms`: ellipses in HU on
a 2x canvas, 2 x 2 block means for partial-volume edges) with the regions thorax,
abdomen, pelvis and **head**, then given the structure real slices have
(:mod:`.phantom_texture`):

- bone (vertebrae, ribs, sternum, pelvis, sacrum, skull): a cortical rim of 1-3 px around
  an interior of marrow (-60 ... 80 HU) crossed by a trabecular network (500-900 HU ridges,
  ~1 mm spacing); in the skull the interior is the diploe;
- vessels: branching trees of tubes from the lung hila (2-3 per lung, radius 1-2 mm down to
  ~0.4 mm), smaller trees anywhere in the lungs and 20-60 vessels crossing the slice (discs,
  radius 0.5-1.5 mm), non-enhanced 20-60 HU or contrast-enhanced 150-300 HU) and in the liver (bright,
  enhanced portal/hepatic veins, or dark, non-enhanced), confined to the organ;
- lung parenchyma: correlated density fluctuations and a gravity-dependent gradient;
- fascia: thin soft-tissue arcs in the subcutaneous fat, fat septa between muscle groups,
  a slight muscle texture;
- head slices: scalp, skull (tables and diploe), grey and white matter (GM 35-45 HU,
  WM 22-32 HU) folded into gyri by a smoothed random field (white-matter cores, grey
  ribbon, CSF sulci), subarachnoid CSF, lateral ventricles, falx, sometimes calcified
  choroid plexus;
- then a blur of 0.35-0.7 px and, in ``NOISE_PROBABILITY`` of the items, correlated CT
  noise (ramp-shaped noise power spectrum; standard deviation 5-30 HU, heads 2-8 HU)
  inside the body.

Window as before: ``value = (clip(HU, -1000, 1000) + 1000) / 2000``; exactly 0 outside the
body and outside the inscribed disc. Items are (512, 512); seeds and splits as in
:mod:`.phantoms`.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from scoremed.data import phantom_texture as tex
from scoremed.data.phantoms import (
    HU_RANGES, TISSUES, Canvas, Tissue, hu_to_unit, inscribed_disc, paint_body, tissue_sampler,
)

NATIVE_SIZE = 512
FOV_MM = 380.0
NATIVE_REGIONS = ("thorax", "abdomen", "pelvis", "head")
REGION_PROBABILITY = (0.28, 0.28, 0.22, 0.22)
NOISE_PROBABILITY = 0.6


def _paint_head(rng: np.random.Generator, canvas_size: int) -> Canvas:
    """Scalp, skull, brain, ventricles and falx on the 2x canvas (body units: 1 = the skin)."""
    hu = tissue_sampler(rng)
    a = rng.uniform(0.36, 0.48)
    cv = Canvas(canvas_size, rng.uniform(-0.04, 0.04, 2), (a, a * rng.uniform(1.12, 1.3)), rng.uniform(-0.2, 0.2))
    mm = 1.0 / (a * FOV_MM / 2)  # one millimetre in body units (x direction)
    skull_out = 1.0 - rng.uniform(4, 7) * mm
    skull_in = skull_out - rng.uniform(5, 9) * mm
    cv.paint(hu("soft"), (0, 0), 1.0, 1.0)  # skin
    cv.paint(hu("fat"), (0, 0), 1 - 1.5 * mm, 1 - 1.5 * mm)  # scalp fat
    cv.paint(hu("soft"), (0, 0), skull_out + 1.2 * mm, skull_out + 1.2 * mm)  # galea
    cv.paint(hu("cortical"), (0, 0), skull_out, skull_out)
    cv.paint(hu("csf"), (0, 0), skull_in, skull_in)
    cv.paint(hu("gm"), (0, 0), skull_in - rng.uniform(0.5, 2) * mm, skull_in - rng.uniform(0.5, 2) * mm)
    cv.brain_edge = skull_in
    size = rng.uniform(0.4, 1.4)  # ventricle size (level and age)
    for side in (-1, 1):
        cv.paint(hu("csf"), (side * 0.06 * size, -0.08), 0.035 * size, 0.2 * size, -side * rng.uniform(0.1, 0.3))
        cv.paint(hu("csf"), (side * 0.1 * size, 0.18 * size), 0.04 * size, 0.08 * size, side * 0.5)  # atria
        if rng.random() < 0.5:  # calcified choroid plexus
            cv.paint(rng.uniform(100, 300), (side * 0.1 * size, 0.2 * size), 0.012, 0.012)
    cv.paint(Tissue(rng.uniform(50, 90), "other"), (0, -0.55 * skull_in), 0.004, 0.3 * skull_in)  # falx
    cv.paint(Tissue(rng.uniform(50, 90), "other"), (0, 0.6 * skull_in), 0.004, 0.3 * skull_in)
    return cv


def _fractions(cv: Canvas, n: int, *names: str) -> list[np.ndarray]:
    """Area fraction (n, n) of each tissue ``name`` from the 2x canvas's label map."""
    blocks = cv.label.reshape(n, 2, n, 2)
    return [0.25 * (blocks == TISSUES.index(k)).sum(axis=(1, 3), dtype=np.uint8) for k in names]


def _brain(hu: np.ndarray, cv: Canvas, gm: np.ndarray, rng: np.random.Generator) -> None:
    """Gyri inside the grey-matter fraction ``gm``: white-matter cores, grey ribbon, CSF sulci.

    One smoothed random field ``g`` (period ~10 mm) folds the cortex: ``g`` high = gyral
    white-matter core, ``g`` low = sulcus (CSF), in between the grey-matter ribbon; deep white
    matter fills the centre; sulci are thin lines along a low level set of ``g``.
    """
    n = hu.shape[0]
    rho, _ = cv.body_coordinates(n)
    r = rho / cv.brain_edge
    g = tex.smooth_noise(rng, hu.shape, rng.uniform(2.5, 3.5))
    deep = np.clip((0.6 + 0.1 * tex.smooth_noise(rng, hu.shape, 8.0) - r) / 0.03, 0.0, 1.0)
    cores = np.clip((g - 0.3) / 0.3, 0.0, 1.0) * (r < 0.92)
    wm = np.maximum(deep, cores) * gm
    hu += wm * (rng.uniform(*HU_RANGES["wm"]) - hu)
    sulci = np.clip(1.0 - np.abs(g + 0.7) / 0.15, 0.0, 1.0) * np.clip((r - 0.6) / 0.1, 0.0, 1.0) * gm * (1 - wm)
    hu += sulci * (rng.uniform(*HU_RANGES["csf"]) - hu)


def _lung_vessels(hu: np.ndarray, lung: np.ndarray, rng: np.random.Generator) -> None:
    inside = lung > 0.5
    if inside.sum() < 100:
        return
    vhu = rng.uniform(20, 60) if rng.random() < 0.5 else rng.uniform(150, 300)
    cols = np.nonzero(inside)[1]
    mid = 0.5 * (cols.min() + cols.max())
    trees = np.zeros_like(hu)
    for side in (-1, 1):
        rr, cc = np.nonzero(inside & ((np.arange(hu.shape[1]) - mid) * side > 0)[None, :])
        if len(rr) < 50:
            continue
        near = np.abs(rr - np.median(rr)) < 0.15 * (rr.max() - rr.min() + 1)
        k = np.argmin(np.abs(cc[near] - mid))
        hilum = np.array([rr[near][k], cc[near][k]], float)
        toward = np.array([rr.mean(), cc.mean()]) - hilum
        base = np.arctan2(toward[1], toward[0])
        for angle in base + rng.uniform(-1.1, 1.1, rng.integers(2, 4)):
            tree = tex.vessel_tree(hu.shape, hilum, (np.cos(angle), np.sin(angle)), rng.uniform(1.5, 3), rng, depth=6)
            np.maximum(trees, tree, out=trees)
    rr, cc = np.nonzero(inside)
    for k in rng.integers(len(rr), size=rng.integers(2, 5)):  # smaller in-plane branches anywhere
        angle = rng.uniform(-np.pi, np.pi)
        tree = tex.vessel_tree(hu.shape, (rr[k], cc[k]), (np.cos(angle), np.sin(angle)), rng.uniform(1, 1.8), rng,
                               depth=4)
        np.maximum(trees, tree, out=trees)
    yy, xx = np.mgrid[:hu.shape[0], :hu.shape[1]]
    for k in rng.integers(len(rr), size=rng.integers(20, 60)):  # vessels crossing the slice
        radius = rng.uniform(0.6, 2.0)
        r0, c0 = rr[k], cc[k]
        box = (slice(max(r0 - 4, 0), r0 + 5), slice(max(c0 - 4, 0), c0 + 5))
        disc = np.clip(radius + 0.5 - np.hypot(yy[box] - r0, xx[box] - c0), 0.0, 1.0)
        np.maximum(trees[box], disc, out=trees[box])
    hu += trees * lung * (vhu - hu)


def _liver_vessels(hu: np.ndarray, liver: np.ndarray, rng: np.random.Generator) -> None:
    rr, cc = np.nonzero(liver > 0.5)
    if len(rr) < 200:
        return
    level = float(np.median(hu[rr, cc]))
    vhu = level + (rng.uniform(40, 120) if rng.random() < 0.6 else -rng.uniform(12, 30))
    trees = np.zeros_like(hu)
    centre = np.array([rr.mean(), cc.mean()])
    for _ in range(rng.integers(2, 5)):
        k = rng.integers(len(rr))
        start = centre + 0.5 * (np.array([rr[k], cc[k]]) - centre)
        angle = rng.uniform(-np.pi, np.pi)
        tree = tex.vessel_tree(hu.shape, start, (np.cos(angle), np.sin(angle)), rng.uniform(1.5, 3), rng, depth=5)
        np.maximum(trees, tree, out=trees)
    hu += trees * liver * (vhu - hu)


def render_native(rng: np.random.Generator, region: str | None = None, noise: bool | None = None) -> np.ndarray:
    """One native phantom (512, 512) float64 in [0, 1].

    ``region`` in ``NATIVE_REGIONS`` or None (random); ``noise`` True/False or None (random,
    with probability ``NOISE_PROBABILITY``).
    """
    if region is None:
        region = NATIVE_REGIONS[rng.choice(len(NATIVE_REGIONS), p=REGION_PROBABILITY)]
    if region not in NATIVE_REGIONS:
        raise ValueError(f"region: expected one of {NATIVE_REGIONS} or None, got {region!r}")
    n = NATIVE_SIZE
    cv = _paint_head(rng, 2 * n) if region == "head" else paint_body(rng, 2 * n, region)
    hu = cv.hu.reshape(n, 2, n, 2).mean(axis=(1, 3))
    cortical, cancellous, fat, soft, lung, liver, gm = _fractions(
        cv, n, "cortical", "cancellous", "fat", "soft", "lung", "liver", "gm")
    tex.trabecular_bone(hu, cortical + cancellous, rng)
    rho, phi = cv.body_coordinates(n)
    pixel = 2.0 / n / float(np.min(cv.axes))
    if region == "head":
        _brain(hu, cv, gm, rng)
    else:
        hu += soft * rng.uniform(3, 8) * tex.smooth_noise(rng, hu.shape, rng.uniform(1, 2.5))
        tex.fascia(hu, rho, phi, fat, soft, cv.fat_edge, pixel, rng)
    if region == "thorax":
        tex.lung_parenchyma(hu, lung, rng)
        _lung_vessels(hu, lung, rng)
    if region == "abdomen":
        _liver_vessels(hu, liver, rng)
    hu = gaussian_filter(hu, rng.uniform(0.35, 0.7), mode="nearest")
    body = np.clip((1.0 - rho) / pixel + 0.5, 0.0, 1.0)
    add_noise = (rng.random() < NOISE_PROBABILITY) if noise is None else bool(noise)
    if add_noise:
        sigma = rng.uniform(2, 8) if region == "head" else rng.uniform(5, 30)
        hu += body * tex.ct_noise(rng, hu.shape, sigma)
    img = hu_to_unit(hu) * (body > 0)
    return np.clip(img, 0.0, 1.0) * inscribed_disc(n)

"""``mri-brain``: axial slices of the MNI152 template with synthetic MRI contrasts (fixed size).

This module renders the fixed-size set (``image_size=S``) and defines the split;
``image_size=None`` gives the native 1 mm set of :mod:`.brain_native` (three orientations,
synthetic head, 256 x 256 grid) with the same held-out slabs. Both are served by
:class:`scoremed.data.builtin.BrainSlices`.

Source: nilearn's MNI152 2009 template at 1 mm (197 x 233 x 189 voxels, skull-stripped
T1) and its grey-matter (GM) and white-matter (WM) probability maps; CSF is the brain
mask minus GM minus WM. All of it ships with nilearn, nothing is downloaded.

Items are float32 tensors (1, S, S) in [0, 1], shown radiologically: rows run anterior to
posterior, columns from the subject's right to left. Every slice is cropped to the same
in-plane box (the brain's bounding box over the whole volume, padded to a square), so one
pixel is ~3.1 mm at S = 64.

Split (fixed; ``z`` is the axial voxel index, MNI z in mm = ``z - 72``):

- ``test``:  z = 88 ... 95 (MNI +16 ... +23 mm; bodies of the lateral ventricles),
- ``val``:   z = 56 ... 63 (MNI -16 ... -9 mm; temporal lobes, midbrain),
- gaps:      5 slices either side of each held-out slab (z = 51-55, 64-68, 83-87, 96-100)
  belong to no split, so no train slice is within 5 mm of a held-out one;
- ``train``: every other slice whose brain area is at least 20 % of the largest axial
  brain area (z = 21 ... 144 minus the above: 88 slices).

Train items draw a slice, a contrast and tissue intensities at random, then apply MONAI
augmentation (affine, flip, bias field, gamma, smoothing, noise). Val/test items are clean
(no augmentation): item ``i`` is slab slice ``i % 8`` in contrast ``CONTRASTS[(i // 8) % 4]``
with tissue intensities from a fixed per-item seed.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from scoremed.data._common import check_split, require

TEST_SLAB = range(88, 96)
VAL_SLAB = range(56, 64)
GAP = 5
MIN_AREA_FRACTION = 0.20
CONTRASTS = ("t1", "t2", "pd", "template")
# Relative tissue intensities (CSF, GM, WM) drawn uniformly per sample from these ranges;
# the ranges do not overlap, so each kind keeps its ordering.
TISSUE_RANGES = {
    "t1": ((0.05, 0.25), (0.45, 0.65), (0.80, 1.00)),  # WM > GM > CSF
    "t2": ((0.80, 1.00), (0.45, 0.65), (0.20, 0.40)),  # CSF > GM > WM
    "pd": ((0.50, 0.70), (0.85, 1.00), (0.65, 0.80)),  # GM >= WM, CSF moderately bright
}
_MARGIN = 0.04  # fraction of the square crop left empty on each side


def split_slices(split: str) -> list[int]:
    """Axial slice indices ``z`` of a split (see the module docstring)."""
    check_split(split)
    if split == "test":
        return list(TEST_SLAB)
    if split == "val":
        return list(VAL_SLAB)
    area = _brain_area()
    excluded = set()
    for slab in (VAL_SLAB, TEST_SLAB):
        excluded.update(range(slab.start - GAP, slab.stop + GAP))
    keep = area >= MIN_AREA_FRACTION * area.max()
    return [z for z in range(len(area)) if keep[z] and z not in excluded]


@functools.lru_cache(maxsize=1)
def _volumes() -> dict[str, np.ndarray]:
    """Template, GM, WM and brain mask as float32 arrays (x, y, z) in RAS orientation."""
    nd = require("nilearn.datasets")
    loaders = {
        "t1": nd.load_mni152_template, "gm": nd.load_mni152_gm_template,
        "wm": nd.load_mni152_wm_template, "mask": nd.load_mni152_brain_mask,
    }
    return {k: np.asarray(f(resolution=1).get_fdata(), dtype=np.float32) for k, f in loaders.items()}


@functools.lru_cache(maxsize=1)
def _brain_area() -> np.ndarray:
    """Brain-mask area of each axial slice in voxels, shape (Z,)."""
    return (_volumes()["mask"] > 0.5).sum(axis=(0, 1))


@functools.lru_cache(maxsize=4)
def tissue_maps(image_size: int) -> torch.Tensor:
    """Per-slice maps (Z, 4, S, S) float32, channels (template T1, CSF, GM, WM), each in [0, 1].

    Computed once per image size (about a second) and cached in memory.
    """
    v = _volumes()
    gm, wm, mask = v["gm"], v["wm"], v["mask"]
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    stack = np.stack([v["t1"] * mask, csf, gm * mask, wm * mask])  # (4, X, Y, Z)
    xs, ys = np.nonzero(mask.any(axis=2))
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = int(round(max(x1 - x0, y1 - y0) / (1 - 2 * _MARGIN)))
    square = np.zeros((4, side, side, stack.shape[3]), np.float32)
    ox, oy = (side - (x1 - x0)) // 2, (side - (y1 - y0)) // 2
    square[:, ox:ox + x1 - x0, oy:oy + y1 - y0] = stack[:, x0:x1, y0:y1]
    # (4, x, y, z) -> (z, 4, rows = y anterior->posterior, cols = x right->left)
    slices = torch.from_numpy(square[:, ::-1, ::-1].transpose(3, 0, 2, 1).copy())
    out = F.interpolate(slices, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0).contiguous()


def synthesize(maps: torch.Tensor, contrast: str, rng: np.random.Generator) -> torch.Tensor:
    """One slice (1, S, S) in contrast ``contrast`` from its maps (4, S, S), before rescaling.

    ``"template"`` returns the template T1; the other kinds mix the CSF/GM/WM partial
    volumes with intensities drawn from ``TISSUE_RANGES[contrast]``.
    """
    if contrast == "template":
        return maps[:1].clone()
    if contrast not in TISSUE_RANGES:
        raise ValueError(f"contrast: expected one of {CONTRASTS}, got {contrast!r}")
    w = torch.tensor([rng.uniform(lo, hi) for lo, hi in TISSUE_RANGES[contrast]], dtype=torch.float32)
    return torch.einsum("k,khw->hw", w, maps[1:]).unsqueeze(0)


def make_augmentation(image_size: int):
    """MONAI augmentation for one (1, S, S) slice; reseed it with ``set_random_state`` per item."""
    import monai.transforms as T  # imported here: monai takes a second to import

    return T.Compose([
        T.RandBiasField(prob=0.5, degree=3, coeff_range=(0.0, 0.15)),
        T.RandAdjustContrast(prob=0.5, gamma=(0.7, 1.4)),
        T.RandGaussianSmooth(prob=0.3, sigma_x=(0.25, 0.7), sigma_y=(0.25, 0.7)),
        T.RandAffine(prob=0.8, rotate_range=np.pi / 18, scale_range=0.08,
                     translate_range=0.04 * image_size, padding_mode="zeros"),
        T.RandFlip(prob=0.5, spatial_axis=1),
        T.RandGaussianNoise(prob=0.5, std=0.02),
    ])

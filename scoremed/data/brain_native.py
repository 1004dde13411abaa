"""``mri-brain`` at native resolution: 1 mm slices in three orientations on a fixed 256 x 256 grid.

Source: the same nilearn MNI152 2009 volumes as :mod:`.brain` (1 mm, 197 x 233 x 189,
template T1, GM, WM, brain mask). nilearn ships only the **skull-stripped** template (its
T1 is zero outside the brain mask), so there is no real head. A synthetic head is drawn
around the brain from the distance ``d`` (mm) to the brain mask: extra-axial CSF, inner
table (bone), diploe (fatty marrow), outer table, galea/muscle, scalp fat and skin, each
layer 1-5 mm thick (random per item), 1 mm partial-volume ramps. Train items have the head
with probability ``HEAD_PROBABILITY`` (skull-stripped otherwise); val/test items always.

Slices keep 1 mm pixels and are centred on a ``GRID`` x ``GRID`` grid with zero background,
so the field of view is the same for every item. Display orientation (like
:class:`scoremed.io.slices.SliceGeometry` for an RAS volume): axial rows anterior ->
posterior, columns right -> left; coronal rows superior -> inferior, columns right -> left;
sagittal rows superior -> inferior, columns anterior -> posterior.

**Split** (``z`` the axial voxel index; the held-out slabs and gaps of :mod:`.brain`):

- ``test`` / ``val``: the axial slabs z = 88-95 / 56-63 only (8 slices each);
- ``train`` axial: the train slices of :mod:`.brain` (5-slice gaps around both slabs);
- ``train`` coronal and sagittal: every slice crosses the held-out axial slabs, so each
  such item keeps only one **half-space** of the volume, z <= 50 (inferior, below the val
  slab's gap) or z >= 101 (superior, above the test slab's gap), and is zero elsewhere
  (the same as a slab-limited acquisition with a straight edge). No voxel within 5 mm of a
  held-out slab is seen in any orientation; no coronal/sagittal image contains a voxel
  of z = 51 ... 100 at all. Slices are kept when the brain area in the kept half is at
  least ``MIN_AREA_FRACTION`` of the largest such area.

Train items draw an orientation (axial with probability 1/2, coronal or sagittal 1/4
each), a slice, a contrast (T1/T2/PD-like from random tissue intensities, or the
template's own T1), the head, then MONAI augmentation (rotation, scale, translation, bias
field, gamma, blur, Rician-like noise; left-right flips for axial and coronal). Val/test
item ``i`` is slab slice ``i % 8`` in contrast ``CONTRASTS[(i // 8) % 4]``, clean.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from scoremed.data import brain
from scoremed.data._common import rescale_unit

GRID = 256
HEAD_PROBABILITY = 0.75
ORIENTATIONS = ("axial", "coronal", "sagittal")
ORIENTATION_PROBABILITY = (0.5, 0.25, 0.25)
_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}
INFERIOR_MAX = brain.VAL_SLAB.start - brain.GAP - 1    # z <= 50
SUPERIOR_MIN = brain.TEST_SLAB.stop + brain.GAP        # z >= 101
MIN_AREA_FRACTION = 0.20
# Head layers outside the brain, inside out: (name, thickness range in mm).
LAYERS = (("csf", (1.0, 3.0)), ("bone", (1.0, 2.0)), ("fat", (2.0, 4.0)), ("bone", (1.0, 2.5)),
          ("soft", (1.0, 3.0)), ("fat", (2.0, 5.0)), ("soft", (1.0, 2.0)))
# Head tissue intensities (bone, fat, soft) per contrast, same scale as brain.TISSUE_RANGES.
HEAD_RANGES = {
    "t1": ((0.0, 0.05), (0.85, 1.00), (0.30, 0.50)),
    "t2": ((0.0, 0.05), (0.55, 0.80), (0.20, 0.35)),
    "pd": ((0.0, 0.08), (0.70, 0.90), (0.50, 0.65)),
    "template": ((0.0, 0.05), (0.85, 1.00), (0.30, 0.50)),
}
_CSF_TEMPLATE = (0.05, 0.15)  # template-contrast CSF outside its mask


@functools.lru_cache(maxsize=1)
def _distance() -> np.ndarray:
    """Distance (mm, float16, capped at 40) of every voxel to the brain mask; 0 inside."""
    from scipy.ndimage import distance_transform_edt

    outside = brain._volumes()["mask"] <= 0.5
    return np.minimum(distance_transform_edt(outside), 40.0).astype(np.float16)


def display_slice(volume: np.ndarray, orientation: str, k: int) -> np.ndarray:
    """Slice ``k`` of an RAS volume (X, Y, Z) along ``orientation``, display-oriented (rows, cols)."""
    return np.take(volume, k, axis=_AXIS[orientation])[::-1, ::-1].T


def _half_rows(orientation: str, half: str, rows: int) -> np.ndarray:
    """Boolean (rows,) of the display rows of a coronal/sagittal slice inside the kept half-space."""
    z = rows - 1 - np.arange(rows)  # display rows run superior -> inferior
    return z <= INFERIOR_MAX if half == "inferior" else z >= SUPERIOR_MIN


@functools.lru_cache(maxsize=1)
def train_slices() -> list[tuple[str, int, str | None]]:
    """Train slices ``(orientation, index, half)``; ``half`` is None for axial (see the docstring)."""
    mask = brain._volumes()["mask"] > 0.5
    out = [("axial", z, None) for z in brain.split_slices("train")]
    z = np.arange(mask.shape[2])
    for orientation in ("coronal", "sagittal"):
        other = (1, 2) if orientation == "sagittal" else (0, 2)
        for half, keep in (("inferior", z <= INFERIOR_MAX), ("superior", z >= SUPERIOR_MIN)):
            area = mask[..., keep].sum(axis=other)
            good = np.flatnonzero(area >= MIN_AREA_FRACTION * area.max())
            out += [(orientation, int(k), half) for k in good]
    return out


def slice_channels(orientation: str, k: int, half: str | None) -> np.ndarray:
    """(5, rows, cols) float32: template T1 (in the mask), CSF, GM, WM, distance to the brain (mm)."""
    v = brain._volumes()
    t1, gm, wm, m = (display_slice(v[n], orientation, k) for n in ("t1", "gm", "wm", "mask"))
    csf = np.clip(m - gm - wm, 0.0, 1.0)
    dist = display_slice(_distance(), orientation, k)
    out = np.stack([t1 * m, csf, gm * m, wm * m, dist]).astype(np.float32)
    if half is not None:
        outside = ~_half_rows(orientation, half, out.shape[1])
        out[:4, outside] = 0.0
        out[4, outside] = np.inf  # no head layers there either
    return out


def head_layers(dist: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Partial volumes (rows, cols) of the head tissues csf/bone/fat/soft from the distance ``dist`` (mm)."""
    out = {name: np.zeros_like(dist) for name, _ in LAYERS}
    inner = 0.0
    for name, (lo, hi) in LAYERS:
        outer = inner + rng.uniform(lo, hi)
        out[name] += np.clip(dist - inner, 0.0, 1.0) - np.clip(dist - outer, 0.0, 1.0)
        inner = outer
    return out


def synthesize_native(ch: np.ndarray, contrast: str, head: bool, rng: np.random.Generator) -> np.ndarray:
    """One slice (rows, cols) from :func:`slice_channels` output, before rescaling."""
    if contrast == "template":
        image = ch[0].copy()
        csf_w = rng.uniform(*_CSF_TEMPLATE)
    else:
        w = [rng.uniform(lo, hi) for lo, hi in brain.TISSUE_RANGES[contrast]]
        image = w[0] * ch[1] + w[1] * ch[2] + w[2] * ch[3]
        csf_w = w[0]
    if head:
        layers = head_layers(ch[4], rng)
        bone, fat, soft = (rng.uniform(lo, hi) for lo, hi in HEAD_RANGES[contrast])
        image = image + csf_w * layers["csf"] + bone * layers["bone"] + fat * layers["fat"] + soft * layers["soft"]
    return image


def on_grid(image: np.ndarray) -> torch.Tensor:
    """Centre a (rows, cols) slice on the GRID x GRID grid with zeros: (1, GRID, GRID) float32."""
    out = torch.zeros(1, GRID, GRID)
    h, w = image.shape
    r, c = (GRID - h) // 2, (GRID - w) // 2
    out[0, r:r + h, c:c + w] = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    return out


def make_native_augmentation():
    """MONAI augmentation of one (1, GRID, GRID) slice; reseed with ``set_random_state`` per item."""
    import monai.transforms as T

    return T.Compose([
        T.RandBiasField(prob=0.5, degree=3, coeff_range=(0.0, 0.2)),
        T.RandAdjustContrast(prob=0.5, gamma=(0.7, 1.4)),
        T.RandAffine(prob=0.8, rotate_range=np.pi / 12, scale_range=0.12, translate_range=10,
                     padding_mode="zeros"),
        T.RandGaussianSmooth(prob=0.3, sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0)),
        T.RandGaussianNoise(prob=0.6, std=0.02),
    ])


def native_item(split: str, index: int, rng: np.random.Generator, augment) -> torch.Tensor:
    """Item ``index`` of ``split`` (1, GRID, GRID) in [0, 1] (see the module docstring)."""
    if split != "train":
        slab = brain.split_slices(split)
        k, contrast = slab[index % len(slab)], brain.CONTRASTS[(index // len(slab)) % len(brain.CONTRASTS)]
        return rescale_unit(on_grid(synthesize_native(slice_channels("axial", k, None), contrast, True, rng)))
    orientation = ORIENTATIONS[rng.choice(3, p=ORIENTATION_PROBABILITY)]
    choices = [s for s in train_slices() if s[0] == orientation]
    _, k, half = choices[int(rng.integers(len(choices)))]
    contrast = brain.CONTRASTS[rng.integers(len(brain.CONTRASTS))]
    x = on_grid(synthesize_native(slice_channels(orientation, k, half), contrast,
                                  bool(rng.random() < HEAD_PROBABILITY), rng))
    augment.set_random_state(seed=int(rng.integers(2**31)))
    x = augment(x).as_subclass(torch.Tensor)
    if orientation != "sagittal" and rng.random() < 0.5:
        x = x.flip(-1)
    return rescale_unit(x.abs())

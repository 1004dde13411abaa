"""``ct-phantom``: procedural CT-like axial slices of the thorax, abdomen or pelvis.

Each phantom is painted from ellipses in Hounsfield units (HU), then windowed:
``value = (clip(HU, -1000, 1000) + 1000) / 2000`` so air -> 0, water -> 0.5, bone -> 0.7-1.
Tissue values (HU): air -1000, lung -900 to -800, fat -120 to -80, water 0-15, soft tissue
and muscle 30-60, liver 50-70, contrast-enhanced blood 150-250, cancellous bone 200-400,
cortical bone 700-1000. A phantom has a body ellipse (random size, aspect, rotation) with
skin, a subcutaneous fat layer and a muscle wall; a spine with paraspinal muscles; region
organs (thorax: lungs with vessels, heart, aorta, ribs, sternum; abdomen: liver, spleen,
kidneys, aorta, vena cava, bowel with gas; pelvis: iliac wings, bladder, bowel with gas);
0-3 small lesions that raise or lower soft tissue by 20-80 HU; then a slight blur.
Painting at 2x resolution and averaging 2x2 blocks gives partial-volume edges.

Everything lies at least one pixel inside the image's inscribed disc (parallel-beam CT
with ``circle=True``); outside it the value is exactly 0.

Items are float32 tensors (1, S, S), served with the native ones of :mod:`.phantoms_native` by
:class:`scoremed.data.builtin.CTPhantoms`. Phantom number ``k`` is drawn from
``numpy.random.default_rng(k)``. Split (fixed):

- ``test``:  item ``i`` is phantom ``i``                 (phantoms 0 ... 999_999),
- ``val``:   item ``i`` is phantom ``1_000_000 + i``     (phantoms 1_000_000 ... 1_999_999),
- ``train``: item ``i`` is phantom ``2**32 * (seed + 1) + i`` (phantoms >= 2**32).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from scoremed.data._common import check_split
from scoremed.errors import InputError

HU_WINDOW = (-1000.0, 1000.0)
REGIONS = ("thorax", "abdomen", "pelvis")
HU_RANGES = {
    "lung": (-900, -800), "fat": (-120, -80), "water": (0, 15), "soft": (30, 60),
    "liver": (50, 70), "blood": (150, 250), "cancellous": (200, 400), "cortical": (700, 1000),
    "gm": (35, 45), "wm": (22, 32), "csf": (0, 12),  # head slices (native set only)
}
HELD_OUT = 1_000_000  # phantoms per held-out split
TISSUES = ("air", "other", *HU_RANGES)  # label codes of Canvas.label


class Tissue(float):
    """An HU value that remembers its tissue name (``paint`` records it in the label map)."""

    def __new__(cls, value: float, name: str):
        out = super().__new__(cls, value)
        out.name = name
        return out


def phantom_number(split: str, index: int, seed: int = 0) -> int:
    """The phantom (and numpy seed) behind item ``index`` of ``split`` (see the module docstring)."""
    check_split(split)
    if split == "train":
        return 2**32 * (seed + 1) + index
    return index + (HELD_OUT if split == "val" else 0)


def hu_to_unit(hu: np.ndarray) -> np.ndarray:
    """Map HU to [0, 1] with the fixed window ``HU_WINDOW``."""
    lo, hi = HU_WINDOW
    return (np.clip(hu, lo, hi) - lo) / (hi - lo)


class Canvas:
    """An HU image on an (n, n) grid over [-1, 1]^2 (x right, y down) painted in a body frame."""

    def __init__(self, n: int, center, axes, angle: float):
        c = (np.arange(n) + 0.5) * 2.0 / n - 1.0
        self.n, self.c = n, c
        self.hu = np.full((n, n), -1000.0)
        self.label = np.zeros((n, n), np.int8)  # index into TISSUES
        self.fat_edge = self.brain_edge = 0.0   # inner edge of the body wall / of the skull (body units)
        self.center, self.axes = np.asarray(center), np.asarray(axes)
        self.rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        self.angle = angle

    def mask(self, p, a: float, b: float, theta: float = 0.0):
        """Pixels inside an ellipse given in body units: centre ``p``, semi-axes ``a, b``, angle ``theta``.

        Returns (row slice, col slice, boolean mask of that box).
        """
        ax, ay = self.axes
        cx, cy = self.center + self.rot @ (np.asarray(p, float) * self.axes)
        th = self.angle + theta
        a, b = a * ax, b * ay
        hx = np.sqrt((a * np.cos(th)) ** 2 + (b * np.sin(th)) ** 2)
        hy = np.sqrt((a * np.sin(th)) ** 2 + (b * np.cos(th)) ** 2)
        cols = slice(*np.searchsorted(self.c, [cx - hx, cx + hx]))
        rows = slice(*np.searchsorted(self.c, [cy - hy, cy + hy]))
        dx = self.c[cols][None, :] - cx
        dy = self.c[rows][:, None] - cy
        u = dx * np.cos(th) + dy * np.sin(th)
        v = -dx * np.sin(th) + dy * np.cos(th)
        return rows, cols, (u / a) ** 2 + (v / b) ** 2 <= 1.0

    def paint(self, hu: float, p, a: float, b: float, theta: float = 0.0) -> None:
        rows, cols, m = self.mask(p, a, b, theta)
        self.hu[rows, cols][m] = hu
        name = getattr(hu, "name", "air" if hu <= -1000.0 else "other")
        self.label[rows, cols][m] = TISSUES.index(name)

    def body_coordinates(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Elliptic radius ``rho`` (1 on the body outline) and angle ``phi`` of an (n, n) pixel grid."""
        c = (np.arange(n) + 0.5) * 2.0 / n - 1.0
        dx, dy = c[None, :] - self.center[0], c[:, None] - self.center[1]
        u = (dx * self.rot[0, 0] + dy * self.rot[1, 0]) / self.axes[0]
        v = (dx * self.rot[0, 1] + dy * self.rot[1, 1]) / self.axes[1]
        return np.hypot(u, v), np.arctan2(v, u)

    def shift(self, delta: float, p, r: float) -> None:
        """Add ``delta`` HU to soft tissue (-200..200 HU) inside a disc: a lesion."""
        rows, cols, m = self.mask(p, r, r)
        box = self.hu[rows, cols]
        box[m & (box > -200) & (box < 200)] += delta


def _spine(cv: Canvas, hu, y: float, r: float) -> None:
    for side in (-1, 1):  # paraspinal muscles
        cv.paint(hu("soft"), (side * 1.6 * r, y + 0.9 * r), 1.3 * r, 1.1 * r)
    cv.paint(hu("cortical"), (0, y + 1.7 * r), 0.35 * r, 0.9 * r)  # spinous process
    cv.paint(hu("cortical"), (0, y), r, 0.85 * r)  # vertebral body
    cv.paint(hu("cancellous"), (0, y), 0.8 * r, 0.65 * r)
    cv.paint(hu("water"), (0, y + 1.1 * r), 0.4 * r, 0.35 * r)  # spinal canal


def _bowel(cv: Canvas, hu, rng, n: int, box) -> None:
    for _ in range(n):
        p = (rng.uniform(*box[0]), rng.uniform(*box[1]))
        r = rng.uniform(0.06, 0.12)
        cv.paint(hu("soft"), p, r * 1.3, r, rng.uniform(0, np.pi))
        if rng.random() < 0.6:
            cv.paint(hu("water") if rng.random() < 0.4 else -1000.0, p, r, 0.7 * r, rng.uniform(0, np.pi))


def _thorax(cv: Canvas, hu, rng) -> None:
    for side in (-1, 1):
        p = (side * rng.uniform(0.40, 0.48), rng.uniform(-0.05, 0.05))
        cv.paint(hu("lung"), p, rng.uniform(0.30, 0.38), rng.uniform(0.50, 0.62), side * rng.uniform(0, 0.2))
        for _ in range(rng.integers(3, 8)):  # vessels
            q = (p[0] + rng.uniform(-0.2, 0.2), p[1] + rng.uniform(-0.35, 0.35))
            cv.paint(hu("soft"), q, *(rng.uniform(0.015, 0.04, 2)))
    cv.paint(hu("soft"), (rng.uniform(0.0, 0.15), rng.uniform(-0.25, -0.1)), rng.uniform(0.25, 0.32),
             rng.uniform(0.2, 0.27), rng.uniform(-0.6, -0.2))  # heart
    cv.paint(hu("blood"), (0.12, 0.3), 0.08, 0.08)  # descending aorta
    _spine(cv, hu, 0.55, 0.13)
    cv.paint(hu("cortical"), (0, -0.88), 0.06, 0.04)  # sternum
    for t in np.linspace(0.2, np.pi - 0.2, rng.integers(4, 7)):  # ribs, both sides
        for side in (-1, 1):
            tt = t + rng.uniform(-0.05, 0.05)
            cv.paint(hu("cortical"), (side * 0.82 * np.cos(tt - np.pi / 2), -0.82 * np.sin(tt - np.pi / 2)),
                     0.05, 0.035, tt)


def _abdomen(cv: Canvas, hu, rng) -> None:
    cv.paint(hu("liver"), (-0.35, rng.uniform(-0.2, 0.0)), rng.uniform(0.4, 0.5), rng.uniform(0.4, 0.55),
             rng.uniform(-0.3, 0.3))
    cv.paint(hu("soft"), (0.5, 0.2), rng.uniform(0.15, 0.22), rng.uniform(0.2, 0.28), 0.5)  # spleen
    for side in (-1, 1):  # kidneys: enhanced cortex, darker medulla
        p = (side * 0.33, 0.42)
        cv.paint(hu("blood"), p, 0.12, 0.17, side * 0.4)
        cv.paint(hu("soft"), p, 0.07, 0.1, side * 0.4)
    cv.paint(hu("blood"), (0.06, 0.25), 0.07, 0.07)  # aorta
    cv.paint(hu("soft") + 40, (-0.12, 0.25), 0.08, 0.06)  # vena cava
    _bowel(cv, hu, rng, rng.integers(3, 8), ((-0.1, 0.55), (-0.65, 0.05)))
    _spine(cv, hu, 0.55, 0.13)


def _pelvis(cv: Canvas, hu, rng) -> None:
    for side in (-1, 1):  # iliac wings: cortical rim around marrow
        p, th = (side * 0.5, 0.2), -side * rng.uniform(0.6, 0.9)
        cv.paint(hu("cortical"), p, 0.32, 0.09, th)
        cv.paint(hu("cancellous"), p, 0.28, 0.05, th)
    cv.paint(hu("water"), (0, rng.uniform(-0.35, -0.2)), rng.uniform(0.15, 0.3), rng.uniform(0.12, 0.22))  # bladder
    _bowel(cv, hu, rng, rng.integers(2, 6), ((-0.4, 0.4), (-0.6, 0.1)))
    cv.paint(hu("cortical"), (0, 0.55), 0.2, 0.11)  # sacrum
    cv.paint(hu("cancellous"), (0, 0.55), 0.16, 0.07)


def tissue_sampler(rng: np.random.Generator):
    """``hu(tissue)``: an HU value drawn uniformly from ``HU_RANGES[tissue]``, as a :class:`Tissue`."""
    def hu(tissue: str) -> Tissue:
        return Tissue(rng.uniform(*HU_RANGES[tissue]), tissue)

    return hu


def paint_body(rng: np.random.Generator, canvas_size: int, region: str) -> Canvas:
    """The HU canvas (``canvas_size``^2) of one phantom of ``region``: body layers, organs, lesions."""
    hu = tissue_sampler(rng)

    a = rng.uniform(0.70, 0.86)
    cv = Canvas(canvas_size, rng.uniform(-0.04, 0.04, 2), (a, a * rng.uniform(0.62, 0.85)),
                 rng.uniform(-0.15, 0.15))
    fat = rng.uniform(0.80, 0.93)  # inner edge of the subcutaneous fat, in body units
    cv.fat_edge = fat
    cv.paint(hu("soft"), (0, 0), 1.0, 1.0)  # skin
    cv.paint(hu("fat"), (0, 0), 0.97, 0.97)
    cv.paint(hu("soft"), (0, 0), fat, fat)  # muscle wall
    cv.paint(hu("fat"), (0, 0), fat - 0.05, fat - 0.06)  # visceral fat / mediastinum
    {"thorax": _thorax, "abdomen": _abdomen, "pelvis": _pelvis}[region](cv, hu, rng)
    for _ in range(rng.integers(0, 4)):
        delta = rng.choice([-1, 1]) * rng.uniform(20, 80)
        cv.shift(delta, rng.uniform(-0.55, 0.55, 2), rng.uniform(0.03, 0.08))
    return cv


def render_phantom(rng: np.random.Generator, image_size: int = 64, region: str | None = None) -> np.ndarray:
    """One phantom (S, S) float64 in [0, 1] drawn with ``rng``; ``region`` in ``REGIONS`` or random."""
    region = REGIONS[rng.integers(3)] if region is None else region
    if region not in REGIONS:
        raise InputError(f"region: expected one of {list(REGIONS)} or None, got {region!r}")
    cv = paint_body(rng, 2 * image_size, region)
    n = image_size
    img = hu_to_unit(cv.hu).reshape(n, 2, n, 2).mean(axis=(1, 3))
    img = gaussian_filter(img, rng.uniform(0.3, 0.7), mode="constant")
    return np.clip(img, 0.0, 1.0) * inscribed_disc(n)


def inscribed_disc(image_size: int) -> np.ndarray:
    """Boolean (S, S): pixel centres within ``S/2 - 1`` pixels of the image centre."""
    c = np.arange(image_size) - (image_size - 1) / 2
    return c[:, None] ** 2 + c[None, :] ** 2 <= (image_size / 2 - 1) ** 2

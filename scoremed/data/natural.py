"""``natural``: RGB photographs that ship with scikit-image, matplotlib and scikit-learn.

Every colour photograph these packages install (nothing is downloaded):

- ``train``: scikit-image ``astronaut`` (512 x 512), ``chelsea`` (300 x 451), ``coffee``
  (400 x 600), the stereo pair ``motorcycle_left`` / ``motorcycle_right`` (500 x 741 each)
  and matplotlib's ``grace_hopper.jpg`` (600 x 512),
- ``val``:   scikit-image ``rocket`` (427 x 640),
- ``test``:  scikit-learn ``china.jpg`` and ``flower.jpg`` (427 x 640 each).

Not used: scikit-image ``cat`` (= ``chelsea``); its other colour images are microscopy
(``immunohistochemistry``, ``lily``, ``skin``), astronomy (``hubble_deep_field``), a retina
(``retina``) or synthetic (``colorwheel``, ``logo``, ``color``, ``chessboard``, the small
test TIFF/GIF); the grey images are not colour; matplotlib's other sample images are an
icon (``Minduka_Present_Blue_Pack.png``), a logo and an MR image (``s1045.ima``, which is
reserved as an independent medical test image).

**Fixed size** (``image_size=S``): item ``i`` comes from photograph ``i % n_photos`` of the
split: a square crop whose side is a log-uniform fraction in [1/4, 1] of the photograph's
shorter side, at a uniform position, resized to S x S (bilinear with antialiasing), flipped
left-right with probability 1/2. Items are float32 (3, S, S) in [0, 1].

**Native** (``image_size=None``): no resampling. Train item ``i``: photograph
``i % n_photos``, a crop of uniform height and width in [256, photo side] at a uniform
position, flipped left-right with probability 1/2: float32 (3, h, w). Val/test item ``i``:
a fixed ``NATIVE_EVAL_SIZE`` x ``NATIVE_EVAL_SIZE`` crop of photograph ``i % n_photos``.

Train items are random given (seed, index); val/test items use fixed seeds.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from scoremed.data._common import ItemDataset, check_split, require

SPLIT_PHOTOS = {
    "train": ("astronaut", "chelsea", "coffee", "motorcycle_left", "motorcycle_right", "grace_hopper"),
    "val": ("rocket",),
    "test": ("china", "flower"),
}
CROP_FRACTION = (0.25, 1.0)
NATIVE_MIN_CROP = 256
NATIVE_EVAL_SIZE = 256


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> torch.Tensor:
    """Photograph ``name`` as float32 (3, H, W) in [0, 1]."""
    if name in ("china", "flower"):
        images = require("sklearn.datasets").load_sample_images()
        arr = next(im for f, im in zip(images.filenames, images.images) if f.endswith(f"{name}.jpg"))
    elif name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        arr = matplotlib.image.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))
    elif name.startswith("motorcycle_"):
        import skimage.data

        left, right, _ = skimage.data.stereo_motorcycle()
        arr = left if name == "motorcycle_left" else right
    elif name in SPLIT_PHOTOS["train"] + SPLIT_PHOTOS["val"]:
        import skimage.data

        arr = getattr(skimage.data, name)()
    else:
        raise ValueError(f"name: expected one of the photographs in SPLIT_PHOTOS, got {name!r}")
    return torch.from_numpy(np.array(arr[..., :3], dtype=np.float32)).permute(2, 0, 1).div_(255.0).contiguous()


def crop(photo: torch.Tensor, top: int, left: int, side: int, image_size: int, flip: bool = False) -> torch.Tensor:
    """The square ``photo[:, top:top+side, left:left+side]`` resized to (3, S, S), optionally flipped."""
    patch = photo[:, top:top + side, left:left + side].unsqueeze(0)
    out = F.interpolate(patch, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    out = out[0].clamp_(0.0, 1.0)
    return out.flip(-1) if flip else out


class NaturalCrops(ItemDataset):
    """``natural`` items: float32 (3, S, S) in [0, 1]; the split is in the module docstring."""

    channels = 3

    def __init__(self, split: str = "train", image_size: int = 64, length: int | None = None, seed: int = 0):
        super().__init__(split, image_size, length, seed)
        self.photo_names = SPLIT_PHOTOS[check_split(split)]
        self.photos = [load_photo(n) for n in self.photo_names]

    def sample(self, rng: np.random.Generator, index: int) -> torch.Tensor:
        photo = self.photos[index % len(self.photos)]
        if self.image_size is None:
            return self._native(photo, rng)
        h, w = photo.shape[1:]
        lo, hi = np.log(CROP_FRACTION)
        side = max(self.image_size // 2, int(round(np.exp(rng.uniform(lo, hi)) * min(h, w))))
        side = min(side, h, w)
        top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        return crop(photo, top, left, side, self.image_size, flip=bool(rng.random() < 0.5))

    def _native(self, photo: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        h, w = photo.shape[1:]
        if self.split == "train":
            ch, cw = (int(rng.integers(min(NATIVE_MIN_CROP, n), n + 1)) for n in (h, w))
        else:
            ch, cw = min(NATIVE_EVAL_SIZE, h), min(NATIVE_EVAL_SIZE, w)
        top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        out = photo[:, top:top + ch, left:left + cw]
        flip = self.split == "train" and bool(rng.random() < 0.5)
        return (out.flip(-1) if flip else out).contiguous()

"""Random training patches with their position in the field of view (for patch priors).

A patch's top-left corner is uniform over every P x P window that overlaps the image by at
least one pixel, i.e. rows ``top`` in [-(P - 1), H - 1]: the part outside the image is zero
background. That is exactly the set of tiles :class:`scoremed.networks.PatchScore` meets
when it tiles a whole image with a random offset.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from scoremed.errors import InputError
from scoremed.networks.patch import patch_positions


def crop_with_background(image: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """The (C, size, size) window of ``image`` (C, H, W) at (top, left); zero outside the image."""
    c, h, w = image.shape
    patch = image.new_zeros((c, size, size))
    r0, r1 = max(top, 0), min(top + size, h)
    c0, c1 = max(left, 0), min(left + size, w)
    patch[:, r0 - top:r1 - top, c0 - left:c1 - left] = image[:, r0:r1, c0:c1]
    return patch


class PatchDataset(Dataset):
    """(patch (C, P, P), position (2, P, P)) items cut at random from a list of full-resolution images.

    Args:
        images: (C, H, W) float tensors in [0, 1]; sizes may differ.
        patch_size: P.
        length: nominal number of items (each index gives its own deterministic patch).
        seed: with the index, fixes the image, the flip and the corner of each item.
        flip: also use left-right mirrored images.
    """

    def __init__(self, images: list[torch.Tensor], patch_size: int, length: int = 100_000, seed: int = 0,
                 flip: bool = True):
        if not images:
            raise InputError("data: no training images to cut patches from")
        self.images, self.patch_size = images, int(patch_size)
        small = [tuple(im.shape[-2:]) for im in images if min(im.shape[-2:]) < self.patch_size]
        if small:
            raise InputError(f"data.patch_size: {self.patch_size} is larger than {len(small)} training image(s), "
                             f"e.g. of size {small[0]}; use a smaller patch size or larger images")
        self.length, self.seed, self.flip = int(length), int(seed), bool(flip)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, int(index)))
        image = self.images[int(rng.integers(len(self.images)))]
        if self.flip and rng.random() < 0.5:
            image = image.flip(-1)
        p = self.patch_size
        h, w = image.shape[-2:]
        top, left = int(rng.integers(-(p - 1), h)), int(rng.integers(-(p - 1), w))
        position = patch_positions(torch.tensor([top]), torch.tensor([left]), (p, p), (h, w))[0]
        return crop_with_background(image.float(), top, left, p), position


def image_pool(dataset: Dataset, size: int) -> list[torch.Tensor]:
    """At most ``size`` items of ``dataset``, evenly spread over its indices (all of them if fewer)."""
    n = len(dataset)
    return [dataset[int(i)] for i in np.unique(np.linspace(0, n - 1, min(n, size)).round().astype(int))]

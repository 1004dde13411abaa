"""Inpainting: keep the known pixels of an image; mask helpers (1 = known pixel)."""
from __future__ import annotations

import math

import torch

from scoremed.errors import InputError

from .base import DecomposableOperator, Shape
from .checks import check_binary_mask, check_tensor, describe
from .primitives import Mask


class Inpainting(DecomposableOperator):
    """y = mask * x on the full grid (zeros at unknown pixels), a :class:`Mask`; T = identity.

    ``mask``: (H, W) or (C, H, W), 1/True = known pixel. Images are (B, C, H, W) real;
    an (H, W) mask applies to every channel.
    """

    kind = "inpaint"
    preserves_shape = True
    has_prox_l2 = True

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        mask = check_binary_mask(mask, "mask")
        if mask.ndim not in (2, 3):
            raise InputError(f"mask: expected shape (H, W) or (C, H, W), got {describe(mask)}")
        self.op = Mask(mask, image_shape=(None, *mask.shape) if mask.ndim == 2 else tuple(mask.shape))

    @property
    def mask(self) -> torch.Tensor:
        """The 0/1 mask (H, W) or (C, H, W)."""
        return self.op.mask

    @property
    def image_shape(self) -> Shape:
        return self.op.image_shape

    @property
    def measurement_shape(self) -> Shape:
        return self.image_shape

    def pseudo_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The masked image (unknown pixels set to 0)."""
        return self.adjoint(self.check_measurement(y))

    def prox_l2(self, v: torch.Tensor, y: torch.Tensor, rho: float | torch.Tensor) -> torch.Tensor:
        """Exact: known pixels v + (y - v) / (1 + rho), the others v."""
        return self._projection_prox(v, y, rho, 1.0)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return self.check_image(x)

    def inverse_transform(self, k: torch.Tensor) -> torch.Tensor:
        return self._check_device(check_tensor(k, "k", self.image_shape, "real", "image"), "k")

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        return self.op(self._check_measurement_layout(y))


def _check_shape(shape: object) -> tuple[int, ...]:
    ok = isinstance(shape, (tuple, list, torch.Size)) and len(shape) in (2, 3) \
        and all(isinstance(s, int) and s >= 1 for s in shape)
    if not ok:
        raise InputError(f"shape: expected (H, W) or (C, H, W) positive ints, got {shape!r}")
    return tuple(shape)


def box_mask(shape: tuple[int, ...], box_fraction: float = 0.25) -> torch.Tensor:
    """Float32 mask of ``shape`` ((H, W) or (C, H, W)) with a centred unknown box.

    ``box_fraction`` is the fraction of the image area that is unknown; the box has the
    image's aspect ratio (0.25 -> a box of half the height and half the width).
    """
    shape = _check_shape(shape)
    if not (isinstance(box_fraction, (int, float)) and 0 < box_fraction < 1):
        raise InputError(f"box_fraction: expected a number in (0, 1), got {box_fraction!r}")
    h, w = shape[-2:]
    side = math.sqrt(box_fraction)
    bh, bw = max(1, round(h * side)), max(1, round(w * side))
    top, left = (h - bh) // 2, (w - bw) // 2
    mask = torch.ones(shape)
    mask[..., top:top + bh, left:left + bw] = 0
    return mask


def random_pixel_mask(shape: tuple[int, ...], missing_fraction: float = 0.7,
                      seed: int | None = None) -> torch.Tensor:
    """Float32 mask of ``shape`` with exactly round(missing_fraction * H * W) unknown pixels.

    The same pixels are unknown in every channel; ``seed`` makes the mask reproducible.
    """
    shape = _check_shape(shape)
    if not (isinstance(missing_fraction, (int, float)) and 0 <= missing_fraction <= 1):
        raise InputError(f"missing_fraction: expected a number in [0, 1], got {missing_fraction!r}")
    h, w = shape[-2:]
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    missing = torch.randperm(h * w, generator=gen)[: round(missing_fraction * h * w)]
    plane = torch.ones(h * w)
    plane[missing] = 0
    return plane.reshape(h, w).expand(shape).clone()


def half_mask(shape: tuple[int, ...], side: str = "right") -> torch.Tensor:
    """Float32 mask of ``shape`` whose ``side`` half ("left", "right", "top", "bottom") is unknown."""
    shape = _check_shape(shape)
    h, w = shape[-2:]
    mask = torch.ones(shape)
    if side == "right":
        mask[..., :, w // 2:] = 0
    elif side == "left":
        mask[..., :, : w - w // 2] = 0
    elif side == "bottom":
        mask[..., h // 2:, :] = 0
    elif side == "top":
        mask[..., : h - h // 2, :] = 0
    else:
        raise InputError(f"side: expected 'left', 'right', 'top' or 'bottom', got {side!r}")
    return mask

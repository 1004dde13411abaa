"""Resolution-free scores from a network trained on P x P patches with position channels.

A patch network ``net(x, t, position)`` sees a (B, C, P, P) patch and a (B, 2, P, P)
position: the normalised row and column coordinates of each pixel centre in the field of
view of the whole image, ``u = 2 (i + 0.5) / H - 1`` (so the image spans [-1, 1] and
pixels outside it have |u| > 1). :class:`PatchScore` turns it into ``score(x, t)`` for an
image of any size H x W, in one of two modes:

- ``"tiles"`` (default, after Hu et al. 2024, PaDIS): the image is placed on a canvas
  shifted by a random offset in [0, P) per call, the canvas is cut into non-overlapping
  P x P tiles, the tiles are scored in batches of ``patch_batch`` and stitched back. The
  canvas outside the image is the noised zero background, ``a(t) * 0 + std(t) * z``, the
  same as the zero padding the patches were trained with. Every tile is exactly what the
  network was trained on; memory is bounded by ``patch_batch``.
- ``"full"``: one fully convolutional pass over the whole image (padded with noised
  background to a multiple of ``multiple``) with the position of every pixel. Faster on a
  GPU, but the network's normalisation layers then see statistics of a bigger field.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from scoremed.errors import InputError
from scoremed.utils import append_dims

MODES = ("tiles", "full")


def axis_coordinates(start: torch.Tensor, length: int, extent: int) -> torch.Tensor:
    """Normalised pixel-centre coordinates (B, length) of pixels start .. start+length-1 of an axis of ``extent``."""
    index = start[:, None].to(torch.float32) + torch.arange(length, device=start.device, dtype=torch.float32)
    return 2.0 * (index + 0.5) / extent - 1.0


def patch_positions(top: torch.Tensor, left: torch.Tensor, patch: tuple[int, int],
                    image: tuple[int, int]) -> torch.Tensor:
    """Position channels (B, 2, ph, pw) of patches with top-left corners ``top``, ``left`` (B,) in an image.

    Corners may be negative or run past the image (patches over the zero background).
    """
    rows = axis_coordinates(top, patch[0], image[0])           # (B, ph)
    cols = axis_coordinates(left, patch[1], image[1])          # (B, pw)
    return torch.stack([rows[:, :, None].expand(-1, -1, patch[1]), cols[:, None, :].expand(-1, patch[0], -1)], 1)


def image_positions(batch: int, height: int, width: int, device=None) -> torch.Tensor:
    """Position channels (batch, 2, height, width) of a whole image."""
    zero = torch.zeros(batch, dtype=torch.long, device=device)
    return patch_positions(zero, zero, (height, width), (height, width))


class PatchScore(nn.Module):
    """score(x, t) of an image of any size from a patch network (see the module docstring).

    Args:
        net: ``net(x (N, C, P, P), t (N,), position (N, 2, P, P)) -> score`` with ``net.sde``.
        patch_size: P, the training patch size.
        mode: "tiles" or "full".
        patch_batch: tiles scored per network call (bounds memory), "tiles" mode only.
        multiple: "full" mode pads H and W up to a multiple of this (the network's total stride).
        seed: seed of the tile offsets and background noise (a fresh stream per device).
    """

    def __init__(self, net: nn.Module, patch_size: int, mode: str = "tiles", patch_batch: int = 16,
                 multiple: int = 8, seed: int = 0):
        super().__init__()
        if mode not in MODES:
            raise InputError(f"patch mode: expected one of {MODES}, got {mode!r}")
        if int(patch_size) < 1 or int(patch_batch) < 1:
            raise InputError(f"patch_size, patch_batch: expected positive integers, got {patch_size}, {patch_batch}")
        self.net, self.sde = net, net.sde
        self.patch_size, self.mode = int(patch_size), mode
        self.patch_batch, self.multiple, self.seed = int(patch_batch), int(multiple), int(seed)
        self._offsets = torch.Generator().manual_seed(self.seed)
        self._noise: dict[torch.device, torch.Generator] = {}

    def reseed(self, seed: int) -> None:
        """Restart the tile offsets and background noise from ``seed`` (samplers call this with their
        own seed, so a seeded run of a patch prior is reproducible)."""
        self.seed = int(seed)
        self._offsets.manual_seed(self.seed)
        self._noise.clear()

    def _noise_generator(self, device: torch.device) -> torch.Generator:
        if device not in self._noise:
            self._noise[device] = torch.Generator(device=device).manual_seed(self.seed + 1)
        return self._noise[device]

    def _canvas(self, x: torch.Tensor, t: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
        """x placed at (top, left) of a (B, C, height, width) canvas of noised zero background."""
        canvas = torch.randn((*x.shape[:2], height, width), generator=self._noise_generator(x.device),
                             device=x.device, dtype=x.dtype) * append_dims(self.sde.marginal_std(t), x.ndim)
        canvas[..., top:top + x.shape[-2], left:left + x.shape[-1]] = x
        return canvas

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise InputError(f"x: a patch prior scores 2D images (B, C, H, W), got shape {tuple(x.shape)}")
        return self._tiles(x, t) if self.mode == "tiles" else self._full(x, t)

    def _full(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        hp, wp = (math.ceil(n / self.multiple) * self.multiple for n in (h, w))
        canvas = self._canvas(x, t, 0, 0, hp, wp) if (hp, wp) != (h, w) else x
        zero = torch.zeros(b, dtype=torch.long, device=x.device)
        position = patch_positions(zero, zero, (hp, wp), (h, w)).to(x.dtype)
        return self.net(canvas, t, position)[..., :h, :w]

    def _tiles(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.patch_size
        oy, ox = (int(v) for v in torch.randint(0, p, (2,), generator=self._offsets))
        ny, nx = math.ceil((h + oy) / p), math.ceil((w + ox) / p)
        canvas = self._canvas(x, t, oy, ox, ny * p, nx * p)
        # (B, C, ny, p, nx, p) -> (B * ny * nx, C, p, p), tiles in row-major order per image
        tiles = canvas.reshape(b, c, ny, p, nx, p).permute(0, 2, 4, 1, 3, 5).reshape(b * ny * nx, c, p, p)
        grid_top = (torch.arange(ny, device=x.device) * p - oy).repeat_interleave(nx).repeat(b)
        grid_left = (torch.arange(nx, device=x.device) * p - ox).repeat(ny * b)
        times = t.repeat_interleave(ny * nx)
        scores = torch.cat([
            self.net(tiles[i:i + self.patch_batch], times[i:i + self.patch_batch],
                     patch_positions(grid_top[i:i + self.patch_batch], grid_left[i:i + self.patch_batch],
                                     (p, p), (h, w)).to(x.dtype))
            for i in range(0, tiles.shape[0], self.patch_batch)])
        canvas = scores.reshape(b, ny, nx, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, ny * p, nx * p)
        return canvas[..., oy:oy + h, ox:ox + w]

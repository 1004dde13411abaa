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
  same as the zero padding the patches were trained with. With ``context`` = m > 0 each
  tile is scored inside a (P + 2m) x (P + 2m) window of its neighbourhood and only its
  centre P x P is kept, so no pixel is scored at a tile edge (on the shipped priors m = 8
  gives +0.2 to +0.6 dB of Tweedie PSNR for 1.4-1.8x the time; docs/training-recipe.md).
  Memory is bounded by ``patch_batch``.
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
        multiple: the network's total stride: "full" mode pads H and W up to a multiple of it, and
            a tile with its context, P + 2 * context, must be one.
        context: pixels of neighbourhood scored with each tile on every side and cropped away
            ("tiles" mode only; 0 = bare tiles).
        seed: seed of the tile offsets and background noise (a fresh stream per device).
    """

    def __init__(self, net: nn.Module, patch_size: int, mode: str = "tiles", patch_batch: int = 16,
                 multiple: int = 8, seed: int = 0, context: int = 0):
        super().__init__()
        if mode not in MODES:
            raise InputError(f"patch mode: expected one of {MODES}, got {mode!r}")
        if int(patch_size) < 1 or int(patch_batch) < 1:
            raise InputError(f"patch_size, patch_batch: expected positive integers, got {patch_size}, {patch_batch}")
        if int(context) < 0 or (int(context) and (int(patch_size) + 2 * int(context)) % int(multiple)):
            raise InputError(f"context: expected 0 or a size with patch_size + 2 * context a multiple of "
                             f"{multiple}, got {context} (patch_size {patch_size})")
        self.net, self.sde = net, net.sde
        self.patch_size, self.mode, self.context = int(patch_size), mode, int(context)
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
        p, m = self.patch_size, self.context
        window = p + 2 * m
        oy, ox = (int(v) for v in torch.randint(0, p, (2,), generator=self._offsets))
        ny, nx = math.ceil((h + oy) / p), math.ceil((w + ox) / p)
        canvas = self._canvas(x, t, oy + m, ox + m, ny * p + 2 * m, nx * p + 2 * m)
        # windows at stride p: (B, C, ny, nx, window, window) -> (B * ny * nx, C, window, window), row-major per image
        tiles = canvas.unfold(2, window, p).unfold(3, window, p).permute(0, 2, 3, 1, 4, 5).reshape(
            b * ny * nx, c, window, window)
        grid_top = (torch.arange(ny, device=x.device) * p - oy - m).repeat_interleave(nx).repeat(b)
        grid_left = (torch.arange(nx, device=x.device) * p - ox - m).repeat(ny * b)
        times = t.repeat_interleave(ny * nx)
        scores = torch.cat([
            self.net(tiles[i:i + self.patch_batch], times[i:i + self.patch_batch],
                     patch_positions(grid_top[i:i + self.patch_batch], grid_left[i:i + self.patch_batch],
                                     (window, window), (h, w)).to(x.dtype))[..., m:m + p, m:m + p]
            for i in range(0, tiles.shape[0], self.patch_batch)])
        canvas = scores.reshape(b, ny, nx, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, ny * p, nx * p)
        return canvas[..., oy:oy + h, ox:ox + w]

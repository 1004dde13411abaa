"""ResUNet: a small, CPU-efficient residual U-Net denoiser backbone ``backbone(x, label)``.

Design (after the ideas of FFDNet, Zhang et al. 2018, and DRUNet, Zhang et al. 2021):

- the input is pixel-unshuffled by 2 and the output pixel-shuffled back, so the whole trunk
  runs at half resolution (a quarter of the pixels);
- the noise level enters as a constant input channel (a noise-level map) and as a cheap
  multiplicative per-channel modulation (a FiLM scale, no shift) inside every residual
  block, both computed from one well-scaled scalar of the label;
- residual blocks conv3x3 - ReLU - conv3x3 + identity, without normalisation layers or
  attention; convolutions are bias-free by default (Mohan et al. 2020);
- strided 2 x 2 convolutions down, transposed 2 x 2 convolutions up, additive skips;
- the last convolution starts at zero, so the initial output is exactly 0.

Image height and width must be multiples of ``2 ** len(channels)`` (the total stride); with three
levels that is 8, the padding multiple ``PatchScore`` uses in "full" mode.

Default size [64, 128, 256] with 2 blocks per level (4.3 M parameters): on one CPU core a training
step (batch 8, 64 x 64 patches with position channels) takes about 0.6 times as long as the
MONAI U-Net [32, 64, 64] (1.1 M parameters).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from scoremed.errors import InputError

#: how the label handed to the backbone is mapped to the noise-level scalar
LABEL_KINDS = ("999t", "sigma")


def noise_scalar(label: torch.Tensor, kind: str) -> torch.Tensor:
    """The well-scaled noise-level scalar (B,) of a label: 999 t -> t in [0, 1]; sigma -> ln(sigma) / 4."""
    if kind == "999t":
        return label / 999.0
    return torch.log(label.clamp_min(1e-12)) / 4.0


class ResBlock(nn.Module):
    """x + conv(relu(scale * conv(x))), with a per-sample, per-channel FiLM ``scale`` (B, C, 1, 1)."""

    def __init__(self, channels: int, bias: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x) * scale))


class ResUNet(nn.Module):
    """Residual U-Net on a pixel-unshuffled input with noise-level map and FiLM-scale conditioning.

    Args:
        in_channels: input channels (image channels plus any position channels).
        out_channels: output channels (the image channels).
        channels: feature channels per level; the total stride is ``2 ** len(channels)``.
        num_res_blocks: residual blocks per level and per path (an int, or one per level); the
            lowest level has one set of blocks, every other level one on each side of the U.
        bias: convolutions with bias terms (default False: bias-free, Mohan et al. 2020).
        label_kind: "999t" (label = 999 t) or "sigma" (label = noise std), see :func:`noise_scalar`.
        film_hidden: width of the small MLP that maps the noise scalar to the FiLM scales.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: Sequence[int] = (64, 128, 256),
                 num_res_blocks: int | Sequence[int] = 2, bias: bool = False, label_kind: str = "999t",
                 film_hidden: int = 64):
        super().__init__()
        levels = len(channels)
        blocks = [num_res_blocks] * levels if isinstance(num_res_blocks, int) else list(num_res_blocks)
        if levels < 1 or len(blocks) != levels:
            raise InputError(f"resunet: expected one num_res_blocks per level ({levels}), got {num_res_blocks!r}")
        if label_kind not in LABEL_KINDS:
            raise InputError(f"resunet: label_kind expected one of {LABEL_KINDS}, got {label_kind!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.label_kind, self.stride = label_kind, 2 ** levels
        self.head = nn.Conv2d(4 * self.in_channels + 1, channels[0], 3, padding=1, bias=bias)
        self.down_blocks = nn.ModuleList(
            nn.ModuleList(ResBlock(channels[i], bias) for _ in range(blocks[i])) for i in range(levels - 1))
        self.downs = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], 2, stride=2, bias=bias) for i in range(levels - 1))
        self.body = nn.ModuleList(ResBlock(channels[-1], bias) for _ in range(blocks[-1]))
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2, bias=bias) for i in range(levels - 1))
        self.up_blocks = nn.ModuleList(
            nn.ModuleList(ResBlock(channels[i], bias) for _ in range(blocks[i])) for i in range(levels - 1))
        self.tail = nn.Conv2d(channels[0], 4 * self.out_channels, 3, padding=1, bias=bias)
        nn.init.zeros_(self.tail.weight)
        if self.tail.bias is not None:
            nn.init.zeros_(self.tail.bias)
        # one FiLM scale per channel of every residual block, all from one tiny MLP; scale = 1 at start
        self._film_sizes = [block.conv1.out_channels for block in self._blocks()]
        self.film = nn.Sequential(nn.Linear(1, film_hidden), nn.SiLU(), nn.Linear(film_hidden, sum(self._film_sizes)))
        nn.init.zeros_(self.film[-1].weight)
        nn.init.zeros_(self.film[-1].bias)

    def _blocks(self) -> list[ResBlock]:
        """Residual blocks in the order forward uses them (and the FiLM scales are laid out)."""
        return [b for group in self.down_blocks for b in group] + list(self.body) + \
            [b for group in reversed(self.up_blocks) for b in group]

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Output (B, out_channels, H, W) of x (B, in_channels, H, W) and a label (B,) (or a scalar)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise InputError(f"resunet: expected an input (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride:
            raise InputError(f"resunet: image height and width must be multiples of {self.stride} "
                             f"(2 ** number of levels), got {h} x {w}; pad the image (PatchScore(multiple="
                             f"{self.stride}) does) or choose another patch size")
        batch = x.shape[0]
        s = noise_scalar(label.to(x.dtype).reshape(-1), self.label_kind).expand(batch)
        scales = [scale[:, :, None, None] for scale in (1.0 + self.film(s[:, None])).split(self._film_sizes, dim=1)]
        scales.reverse()   # popped in the order of self._blocks()

        z = F.pixel_unshuffle(x, 2)
        noise_map = s[:, None, None, None].expand(batch, 1, z.shape[-2], z.shape[-1])
        z = self.head(torch.cat([z, noise_map], 1))
        skips = []
        for group, down in zip(self.down_blocks, self.downs):
            for block in group:
                z = block(z, scales.pop())
            skips.append(z)
            z = down(z)
        for block in self.body:
            z = block(z, scales.pop())
        for group, up in zip(reversed(self.up_blocks), reversed(self.ups)):
            z = up(z) + skips.pop()
            for block in group:
                z = block(z, scales.pop())
        return F.pixel_shuffle(self.tail(z), 2)


def build_resunet(arch: dict[str, Any]) -> ResUNet:
    """ResUNet from an architecture dict (in_channels, position_channels, channels, num_res_blocks, bias,
    time_label); the output has the image channels only."""
    name = "architecture"
    if int(arch.get("spatial_dims", 2)) != 2:
        raise InputError(f"{name}.spatial_dims: resunet is 2D only, got {arch.get('spatial_dims')!r}")
    channels = arch.get("channels", [64, 128, 256])
    if not isinstance(channels, (list, tuple)) or not channels or \
            not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in channels):
        raise InputError(f"{name}.channels: expected a non-empty list of positive integers, got {channels!r}")
    blocks = arch.get("num_res_blocks", 2)
    items = [blocks] if isinstance(blocks, int) else blocks
    if not isinstance(items, (list, tuple)) or not all(
            isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in items):
        raise InputError(f"{name}.num_res_blocks: expected a positive integer or one per level, got {blocks!r}")
    time_label = arch.get("time_label", "999t")
    if time_label not in LABEL_KINDS:
        raise InputError(f"{name}.time_label: expected one of {LABEL_KINDS}, got {time_label!r}")
    in_channels = int(arch["in_channels"])
    return ResUNet(in_channels + int(arch.get("position_channels", 0)), in_channels, list(channels),
                   blocks if isinstance(blocks, int) else list(blocks), bias=bool(arch.get("bias", False)),
                   label_kind=time_label)


__all__ = ["LABEL_KINDS", "ResBlock", "ResUNet", "build_resunet", "noise_scalar"]

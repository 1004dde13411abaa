"""FIR up/down-sampling (StyleGAN2 ``upfirdn2d`` family) written with ordinary torch ops.

The reference NCSN++ compiles a CUDA extension for these; here they are a zero-insertion,
a pad and a depthwise convolution, so they run on any device and are differentiable.
"""
from __future__ import annotations

import functools
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def fir_kernel_2d(k: Sequence[float], gain: float = 1.0) -> torch.Tensor:
    """Separable 1-D taps -> normalised 2-D kernel (sums to ``gain``)."""
    k = torch.as_tensor(k, dtype=torch.float64)
    if k.ndim == 1:
        k = torch.outer(k, k)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"fir_kernel: expected 1-D taps or a square 2-D kernel, got shape {tuple(k.shape)}")
    return (k / k.sum() * gain).float()


@functools.lru_cache(maxsize=64)
def _kernel_on(k: tuple[float, ...], gain: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """:func:`fir_kernel_2d` cached per device, so a forward pass copies no kernel to the GPU."""
    with torch.inference_mode(False):  # usable under autograd even if first built in inference mode
        return fir_kernel_2d(k, gain).to(device=device, dtype=dtype)


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Zero-insert by ``up``, pad both axes by ``pad`` (before, after), convolve with ``kernel``
    (on x's device), keep every ``down``-th sample."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = torch.flip(kernel.to(x), (0, 1))[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=down, groups=c)


def upsample_2d(x: torch.Tensor, k: Sequence[float], factor: int = 2) -> torch.Tensor:
    """FIR upsampling by ``factor``: (B, C, H, W) -> (B, C, factor H, factor W)."""
    kernel = _kernel_on(tuple(k), float(factor ** 2), x.device, x.dtype)
    p = kernel.shape[0] - factor
    return upfirdn2d(x, kernel, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample_2d(x: torch.Tensor, k: Sequence[float], factor: int = 2) -> torch.Tensor:
    """FIR downsampling by ``factor``: (B, C, H, W) -> (B, C, H / factor, W / factor)."""
    kernel = _kernel_on(tuple(k), 1.0, x.device, x.dtype)
    p = kernel.shape[0] - factor
    return upfirdn2d(x, kernel, down=factor, pad=((p + 1) // 2, p // 2))


def upsample_conv_2d(x: torch.Tensor, w: torch.Tensor, k: Sequence[float], factor: int = 2) -> torch.Tensor:
    """Fused FIR upsampling and convolution with weight ``w`` (out, in, kh, kw), padding applied once."""
    kernel = _kernel_on(tuple(k), float(factor ** 2), x.device, x.dtype)
    p = (kernel.shape[0] - factor) - (w.shape[-1] - 1)
    w_t = torch.flip(w, (2, 3)).transpose(0, 1)
    x = F.conv_transpose2d(x, w_t, stride=factor)
    return upfirdn2d(x, kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1))


def conv_downsample_2d(x: torch.Tensor, w: torch.Tensor, k: Sequence[float], factor: int = 2) -> torch.Tensor:
    """Fused convolution with weight ``w`` and FIR downsampling, padding applied once."""
    kernel = _kernel_on(tuple(k), 1.0, x.device, x.dtype)
    p = (kernel.shape[0] - factor) + (w.shape[-1] - 1)
    x = upfirdn2d(x, kernel, pad=((p + 1) // 2, p // 2))
    return F.conv2d(x, w, stride=factor)


def naive_upsample_2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upsampling."""
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def naive_downsample_2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Average pooling over ``factor`` x ``factor`` blocks."""
    return F.avg_pool2d(x, factor)


class FIRConv2d(nn.Module):
    """Convolution fused with FIR up- or downsampling (parameters ``weight``, ``bias``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, up: bool = False, down: bool = False,
                 resample_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        if up == down:
            raise ValueError("FIRConv2d: exactly one of up / down must be set")
        self.weight = nn.Parameter(torch.zeros(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.up, self.resample_kernel = up, tuple(resample_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        resample = upsample_conv_2d if self.up else conv_downsample_2d
        return resample(x, self.weight, self.resample_kernel) + self.bias[None, :, None, None]

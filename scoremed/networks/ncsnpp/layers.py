"""Building blocks of NCSN++ / DDPM++; attribute names follow the reference checkpoints."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scoremed.networks.ncsnpp import fir

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "elu": nn.ELU, "relu": nn.ReLU, "lrelu": lambda: nn.LeakyReLU(0.2), "swish": nn.SiLU,
}


def ddpm_init_(weight: torch.Tensor, scale: float = 1.0, in_axis: int = 1, out_axis: int = 0) -> torch.Tensor:
    """DDPM initialisation in place: uniform variance scaling, fan_avg mode (scale 0 -> 1e-10)."""
    shape = weight.shape
    receptive = weight.numel() / shape[in_axis] / shape[out_axis]
    fan_avg = (shape[in_axis] + shape[out_axis]) * receptive / 2
    bound = math.sqrt(3 * (scale or 1e-10) / fan_avg)
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


def conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, padding: int | None = None,
         init_scale: float = 1.0) -> nn.Conv2d:
    """Conv2d with DDPM initialisation and zero bias."""
    layer = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2 if padding is None else padding)
    ddpm_init_(layer.weight, init_scale)
    nn.init.zeros_(layer.bias)
    return layer


def dense(in_features: int, out_features: int) -> nn.Linear:
    """Linear layer with DDPM initialisation and zero bias."""
    layer = nn.Linear(in_features, out_features)
    ddpm_init_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(channels // 4, 32), channels, eps=1e-6)


def merge(x: torch.Tensor, h: torch.Tensor, skip_rescale: bool) -> torch.Tensor:
    """Residual sum, divided by sqrt(2) when ``skip_rescale``."""
    return (x + h) / math.sqrt(2.0) if skip_rescale else x + h


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_positions: int = 10000) -> torch.Tensor:
    """Sinusoidal (transformer / DDPM) embedding of (B,) time labels -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=timesteps.device)
                      * -(math.log(max_positions) / (half - 1)))
    args = timesteps.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class GaussianFourierProjection(nn.Module):
    """Random Fourier features of log-sigma; ``W`` is fixed (not trained, not in the EMA)."""

    def __init__(self, embedding_size: int = 256, scale: float = 1.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(embedding_size) * scale, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = x[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


class NIN(nn.Module):
    """Per-pixel linear map over channels (parameters ``W`` (in, out), ``b``)."""

    def __init__(self, in_dim: int, num_units: int, init_scale: float = 0.1):
        super().__init__()
        self.W = nn.Parameter(ddpm_init_(torch.empty(in_dim, num_units), init_scale))
        self.b = nn.Parameter(torch.zeros(num_units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bchw,co->bohw", x, self.W) + self.b[None, :, None, None]


class Combine(nn.Module):
    """Merge an input-pyramid level into the features: 1x1 conv, then concatenate or sum."""

    def __init__(self, dim1: int, dim2: int, method: str = "cat"):
        super().__init__()
        self.Conv_0 = conv(dim1, dim2, kernel=1)
        self.method = method

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.Conv_0(x)
        return torch.cat([h, y], dim=1) if self.method == "cat" else h + y


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels (DDPM style)."""

    def __init__(self, channels: int, skip_rescale: bool = False, init_scale: float = 0.0):
        super().__init__()
        self.GroupNorm_0 = group_norm(channels)
        self.NIN_0 = NIN(channels, channels)
        self.NIN_1 = NIN(channels, channels)
        self.NIN_2 = NIN(channels, channels)
        self.NIN_3 = NIN(channels, channels, init_scale=init_scale)
        self.skip_rescale = skip_rescale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        h = self.GroupNorm_0(x)
        q, k, v = (m(h).reshape(b, 1, c, hgt * wid).transpose(2, 3) for m in (self.NIN_0, self.NIN_1, self.NIN_2))
        h = F.scaled_dot_product_attention(q, k, v).transpose(2, 3).reshape(b, c, hgt, wid)
        return merge(x, self.NIN_3(h), self.skip_rescale)


class Upsample(nn.Module):
    """x2 upsampling: nearest (+ 3x3 conv ``Conv_0``) or FIR (+ fused conv ``Conv2d_0``)."""

    def __init__(self, in_ch: int, out_ch: int | None = None, with_conv: bool = False, fir_on: bool = False,
                 fir_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        out_ch = out_ch or in_ch
        if with_conv and fir_on:
            self.Conv2d_0 = fir.FIRConv2d(in_ch, out_ch, up=True, resample_kernel=fir_kernel)
            ddpm_init_(self.Conv2d_0.weight)
        elif with_conv:
            self.Conv_0 = conv(in_ch, out_ch)
        self.with_conv, self.fir, self.fir_kernel = with_conv, fir_on, tuple(fir_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fir:
            return self.Conv2d_0(x) if self.with_conv else fir.upsample_2d(x, self.fir_kernel)
        h = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.Conv_0(h) if self.with_conv else h


class Downsample(nn.Module):
    """/2 downsampling: strided 3x3 conv ``Conv_0`` or average pooling, or their FIR versions."""

    def __init__(self, in_ch: int, out_ch: int | None = None, with_conv: bool = False, fir_on: bool = False,
                 fir_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        out_ch = out_ch or in_ch
        if with_conv and fir_on:
            self.Conv2d_0 = fir.FIRConv2d(in_ch, out_ch, down=True, resample_kernel=fir_kernel)
            ddpm_init_(self.Conv2d_0.weight)
        elif with_conv:
            self.Conv_0 = conv(in_ch, out_ch, stride=2, padding=0)
        self.with_conv, self.fir, self.fir_kernel = with_conv, fir_on, tuple(fir_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fir:
            return self.Conv2d_0(x) if self.with_conv else fir.downsample_2d(x, self.fir_kernel)
        x = F.pad(x, (0, 1, 0, 1))  # TensorFlow "SAME" padding for a stride-2 3x3 conv
        return self.Conv_0(x) if self.with_conv else F.avg_pool2d(x, 2, stride=2)


class _ResnetBlock(nn.Module):
    """Shared body: norm, act, conv, + time bias, norm, act, dropout, conv."""

    def _body(self, x: torch.Tensor, temb: torch.Tensor | None) -> torch.Tensor:
        h = self.Conv_0(x)
        if temb is not None:
            h = h + self.Dense_0(self.act(temb))[:, :, None, None]
        return self.Conv_1(self.Dropout_0(self.act(self.GroupNorm_1(h))))

    def _layers(self, act: nn.Module, in_ch: int, out_ch: int, temb_dim: int | None, dropout: float,
                init_scale: float) -> None:
        self.GroupNorm_0 = group_norm(in_ch)
        self.Conv_0 = conv(in_ch, out_ch)
        if temb_dim is not None:
            self.Dense_0 = dense(temb_dim, out_ch)
        self.GroupNorm_1 = group_norm(out_ch)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = conv(out_ch, out_ch, init_scale=init_scale)
        self.act = act


class ResnetBlockDDPM(_ResnetBlock):
    """DDPM residual block; the shortcut is a NIN when the channel count changes."""

    def __init__(self, act: nn.Module, in_ch: int, out_ch: int | None = None, temb_dim: int | None = None,
                 dropout: float = 0.1, skip_rescale: bool = False, init_scale: float = 0.0):
        super().__init__()
        out_ch = out_ch or in_ch
        self._layers(act, in_ch, out_ch, temb_dim, dropout, init_scale)
        if in_ch != out_ch:
            self.NIN_0 = NIN(in_ch, out_ch)
        self.skip_rescale = skip_rescale

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self._body(self.act(self.GroupNorm_0(x)), temb)
        if hasattr(self, "NIN_0"):
            x = self.NIN_0(x)
        return merge(x, h, self.skip_rescale)


class ResnetBlockBigGAN(_ResnetBlock):
    """BigGAN residual block that can resample (FIR or naive) on both paths; 1x1 shortcut ``Conv_2``."""

    def __init__(self, act: nn.Module, in_ch: int, out_ch: int | None = None, temb_dim: int | None = None,
                 up: bool = False, down: bool = False, dropout: float = 0.1, fir_on: bool = False,
                 fir_kernel: Sequence[float] = (1, 3, 3, 1), skip_rescale: bool = True, init_scale: float = 0.0):
        super().__init__()
        out_ch = out_ch or in_ch
        self._layers(act, in_ch, out_ch, temb_dim, dropout, init_scale)
        if in_ch != out_ch or up or down:
            self.Conv_2 = conv(in_ch, out_ch, kernel=1)
        self.up, self.down, self.fir, self.fir_kernel = up, down, fir_on, tuple(fir_kernel)
        self.skip_rescale = skip_rescale

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            return fir.upsample_2d(x, self.fir_kernel) if self.fir else fir.naive_upsample_2d(x)
        if self.down:
            return fir.downsample_2d(x, self.fir_kernel) if self.fir else fir.naive_downsample_2d(x)
        return x

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self._body(self._resample(self.act(self.GroupNorm_0(x))), temb)
        x = self._resample(x)
        if hasattr(self, "Conv_2"):
            x = self.Conv_2(x)
        return merge(x, h, self.skip_rescale)

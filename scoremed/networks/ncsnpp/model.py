"""NCSN++ / DDPM++ U-Net (Song et al., ICLR 2021) with the reference parameter layout.

Modules live in one ``all_modules`` list in the order the reference defines them, so
published state dicts load without renaming; ``forward`` consumes that list in order.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Any, Iterator

import torch
from torch import nn

from scoremed.errors import InputError
from scoremed.networks.ncsnpp import layers
from scoremed.networks.ncsnpp.config import NCSNppConfig


class NCSNpp(nn.Module):
    """``model(x, label) -> (B, C, H, W)``; label is sigma (Fourier embedding) or 999 t (positional).

    Uncentred inputs (``data.centered = false``, images in [0, 1]) are mapped to 2x-1 inside, and
    with ``scale_by_sigma`` the output is divided by the label sigma, as in the reference.
    """

    def __init__(self, cfg: NCSNppConfig):
        super().__init__()
        self.cfg = cfg
        self.act = act = layers.ACTIVATIONS[cfg.nonlinearity]()
        self.register_buffer("sigmas", torch.exp(torch.linspace(
            math.log(cfg.sigma_max), math.log(cfg.sigma_min), cfg.num_scales, dtype=torch.float64)))
        nf, channels, fir_args = cfg.nf, cfg.num_channels, {"fir_on": cfg.fir, "fir_kernel": cfg.fir_kernel}
        ddpm_blocks = cfg.resblock_type == "ddpm"
        block = partial(layers.ResnetBlockDDPM if ddpm_blocks else layers.ResnetBlockBigGAN, act=act,
                        dropout=cfg.dropout, init_scale=cfg.init_scale, skip_rescale=cfg.skip_rescale,
                        temb_dim=4 * nf, **({} if ddpm_blocks else fir_args))
        attn = partial(layers.AttnBlock, init_scale=cfg.init_scale, skip_rescale=cfg.skip_rescale)

        # parameter-free resamplers of the image pyramids live outside ``all_modules``
        if cfg.progressive_input == "input_skip":
            self.pyramid_downsample = layers.Downsample(channels, **fir_args)
        if cfg.progressive == "output_skip":
            self.pyramid_upsample = layers.Upsample(channels, **fir_args)

        mods: list[nn.Module] = []
        if cfg.embedding_type == "fourier":
            mods.append(layers.GaussianFourierProjection(nf, scale=cfg.fourier_scale))
        if cfg.conditional:
            mods += [layers.dense(2 * nf if cfg.embedding_type == "fourier" else nf, 4 * nf),
                     layers.dense(4 * nf, 4 * nf)]

        mods.append(layers.conv(channels, nf))
        skips, in_ch, pyramid_ch = [nf], nf, channels
        for level, res in enumerate(cfg.resolutions):
            for _ in range(cfg.num_res_blocks):
                out_ch = nf * cfg.ch_mult[level]
                mods.append(block(in_ch=in_ch, out_ch=out_ch))
                in_ch = out_ch
                if res in cfg.attn_resolutions:
                    mods.append(attn(channels=in_ch))
                skips.append(in_ch)
            if level == len(cfg.ch_mult) - 1:
                continue
            mods.append(layers.Downsample(in_ch, with_conv=cfg.resamp_with_conv, **fir_args) if ddpm_blocks
                        else block(in_ch=in_ch, down=True))
            if cfg.progressive_input == "input_skip":
                mods.append(layers.Combine(pyramid_ch, in_ch, method=cfg.progressive_combine))
                in_ch *= 2 if cfg.progressive_combine == "cat" else 1
            elif cfg.progressive_input == "residual":
                mods.append(layers.Downsample(pyramid_ch, in_ch, with_conv=True, **fir_args))
                pyramid_ch = in_ch
            skips.append(in_ch)

        in_ch = skips[-1]
        mods += [block(in_ch=in_ch), attn(channels=in_ch), block(in_ch=in_ch)]

        for level in reversed(range(len(cfg.ch_mult))):
            for _ in range(cfg.num_res_blocks + 1):
                out_ch = nf * cfg.ch_mult[level]
                mods.append(block(in_ch=in_ch + skips.pop(), out_ch=out_ch))
                in_ch = out_ch
            if cfg.resolutions[level] in cfg.attn_resolutions:
                mods.append(attn(channels=in_ch))
            top = level == len(cfg.ch_mult) - 1
            if cfg.progressive == "output_skip":
                mods += [layers.group_norm(in_ch), layers.conv(in_ch, channels, init_scale=cfg.init_scale)]
            elif cfg.progressive == "residual":
                mods += ([layers.group_norm(in_ch), layers.conv(in_ch, in_ch)] if top
                         else [layers.Upsample(pyramid_ch, in_ch, with_conv=True, **fir_args)])
                pyramid_ch = in_ch
            if level != 0:
                mods.append(layers.Upsample(in_ch, with_conv=cfg.resamp_with_conv, **fir_args) if ddpm_blocks
                            else block(in_ch=in_ch, up=True))
        if cfg.progressive != "output_skip":
            mods += [layers.group_norm(in_ch), layers.conv(in_ch, channels, init_scale=cfg.init_scale)]
        self.all_modules = nn.ModuleList(mods)

    # -- forward ---------------------------------------------------------------------------
    def _head(self, mods: Iterator[nn.Module], h: torch.Tensor) -> torch.Tensor:
        norm, conv = next(mods), next(mods)
        return conv(self.act(norm(h)))

    def _block(self, mods: Iterator[nn.Module], h: torch.Tensor, temb: torch.Tensor | None) -> torch.Tensor:
        module = next(mods)
        return module(h) if isinstance(module, (layers.Upsample, layers.Downsample)) else module(h, temb)

    def forward(self, x: torch.Tensor, time_cond: torch.Tensor) -> torch.Tensor:
        cfg, mods = self.cfg, iter(self.all_modules)
        fourier = cfg.embedding_type == "fourier"
        temb = next(mods)(torch.log(time_cond)) if fourier else layers.timestep_embedding(time_cond, cfg.nf)
        if cfg.conditional:
            temb = next(mods)(temb)
            temb = next(mods)(self.act(temb))
        else:
            temb = None
        if not cfg.centered:
            x = 2 * x - 1.0

        x_pyramid = x
        hs = [next(mods)(x)]
        for level, res in enumerate(cfg.resolutions):
            for _ in range(cfg.num_res_blocks):
                h = next(mods)(hs[-1], temb)
                if res in cfg.attn_resolutions:
                    h = next(mods)(h)
                hs.append(h)
            if level == len(cfg.ch_mult) - 1:
                continue
            h = self._block(mods, hs[-1], temb)
            if cfg.progressive_input == "input_skip":
                x_pyramid = self.pyramid_downsample(x_pyramid)
                h = next(mods)(x_pyramid, h)
            elif cfg.progressive_input == "residual":
                x_pyramid = h = layers.merge(next(mods)(x_pyramid), h, cfg.skip_rescale)
            hs.append(h)

        h = next(mods)(hs[-1], temb)
        h = next(mods)(h)
        h = next(mods)(h, temb)

        pyramid = None
        for level in reversed(range(len(cfg.ch_mult))):
            for _ in range(cfg.num_res_blocks + 1):
                h = next(mods)(torch.cat([h, hs.pop()], dim=1), temb)
            if cfg.resolutions[level] in cfg.attn_resolutions:
                h = next(mods)(h)
            top = level == len(cfg.ch_mult) - 1
            if cfg.progressive == "output_skip":
                pyramid = self._head(mods, h) if top else self.pyramid_upsample(pyramid) + self._head(mods, h)
            elif cfg.progressive == "residual" and top:
                pyramid = self._head(mods, h)
            elif cfg.progressive == "residual":
                pyramid = h = layers.merge(next(mods)(pyramid), h, cfg.skip_rescale)
            if level != 0:
                h = self._block(mods, h, temb)

        h = pyramid if cfg.progressive == "output_skip" else self._head(mods, h)
        if next(mods, None) is not None:
            raise RuntimeError("NCSNpp: forward left modules of all_modules unused")
        if cfg.scale_by_sigma:
            sigma = time_cond if fourier else self.sigmas[time_cond.long()]
            h = h / sigma.to(h.dtype).reshape(-1, *([1] * (h.ndim - 1)))
        return h


def build_ncsnpp(arch: dict[str, Any]) -> NCSNpp:
    """Build NCSN++ from an architecture dict holding the nested reference config (``data``, ``model``)."""
    if not isinstance(arch, dict):
        raise InputError(f"architecture: expected a mapping with 'data' and 'model' sections, "
                         f"got {type(arch).__name__}")
    return NCSNpp(NCSNppConfig.from_dict(arch))

"""Measured MRI k-space onto the reconstruction grid (files are read by :mod:`scoremed.io.fastmri`).

Without a mask (the file's ``mask`` dataset or ``kspace_mask``), the sampled locations are
the non-zero ones; when everything is sampled (fastMRI train/val files) the data are
undersampled retrospectively with a mask made on the reconstruction grid, and the fully
sampled data give the reference for metrics.

**Resolution.** fastMRI k-space is e.g. 640 x 368:

1. *readout oversampling*: when H > W and whole columns are sampled (fully sampled along
   the readout), the image is cropped to the central W rows (exact, as fastMRI's own
   320 x 320 crops do), making the field of view square;
2. that grid is kept as it is for a resolution-free prior (every measured sample is used);
   only for a fixed-size S x S prior (or when a grid is asked for, ``size``) the central
   S x S block of k-space is kept (zero-padded if smaller): the orthonormal-FFT image of
   the whole field of view at S x S pixels, i.e. low-pass filtered and downsampled.
   Values are then multiplied by ``sqrt(S*S / (H*W))`` so image intensities keep their
   scale, and the mask is cropped identically (pixel = FOV / S).

**Phase and coils**: see :func:`scoremed.tasks.mri.coil_operator` (ESPIRiT maps on the
calibration block, the calibration image's phase absorbed into the maps).

**Scale.** Every slice is divided by one number per file, the 99.5th percentile of the
zero-filled (SENSE-combined) magnitude over all slices (:func:`percentile_scale`), so the
prior sees images around [0, 1]; outputs are multiplied back.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from scoremed.errors import InputError
from scoremed.io.fastmri import check_mask, open_kspace, read_npy, read_slice
from scoremed.tasks.mri import measured_operator


@dataclass
class KSpaceVolume:
    """Multi-slice k-space on the reconstruction grid (H, W) (see the module docstring)."""
    kspace: torch.Tensor                   # (slices, coils, H, W) complex64, measured, scaled
    mask: torch.Tensor                     # (H, W) float32
    scale: float                           # divide-by factor applied to kspace (undo on output)
    reference: torch.Tensor | None         # (slices, 1, H, W) fully sampled magnitude, scaled
    original_shape: tuple[int, int]        # (H, W) of the file's k-space
    multicoil: bool
    source: str
    notes: list[str] = field(default_factory=list)


def percentile_scale(magnitude: torch.Tensor, q: float = 0.995, max_values: int = 1_000_000) -> float:
    """The ``q`` quantile of ``magnitude`` (evenly subsampled to at most about ``max_values`` values)."""
    values = magnitude.flatten()
    return float(torch.quantile(values[::max(1, values.numel() // max_values)], q))


def rss_images(kspace: torch.Tensor) -> torch.Tensor:
    """(slices, coils, H, W) k-space -> (slices, 1, H, W) root-sum-of-squares image."""
    from scoremed.operators import rss
    from scoremed.operators.mri import ifft2c

    return rss(ifft2c(kspace))


def _crop_readout(k: torch.Tensor, w: int) -> torch.Tensor:
    """Keep the central ``w`` image rows of centred k-space (..., H, W): exact, through the image domain."""
    from scoremed.operators.mri import fft2c, ifft2c

    start = k.shape[-2] // 2 - w // 2
    return fft2c(ifft2c(k)[..., start:start + w, :])


def _resize_kspace(k: torch.Tensor, size: int) -> torch.Tensor:
    """Central size x size block of centred k-space (zero-padded where smaller), last two dims."""
    h, w = k.shape[-2:]
    out = torch.zeros((*k.shape[:-2], size, size), dtype=k.dtype)
    src_r0, dst_r0 = max(h // 2 - size // 2, 0), max(size // 2 - h // 2, 0)
    src_c0, dst_c0 = max(w // 2 - size // 2, 0), max(size // 2 - w // 2, 0)
    nr, nc = min(h, size), min(w, size)
    out[..., dst_r0:dst_r0 + nr, dst_c0:dst_c0 + nc] = k[..., src_r0:src_r0 + nr, src_c0:src_c0 + nc]
    return out


def read_kspace(path: str | os.PathLike, size: int | None, mask_path: str | None = None,
                make_mask: Callable[[tuple[int, int]], torch.Tensor] | None = None, argument: str = "kspace",
                mask_argument: str = "kspace_mask") -> KSpaceVolume:
    """Read a fastMRI HDF5 file (or a .npy k-space array of the same layout) onto its own grid (``size``
    None: after the exact readout-oversampling crop) or an S x S grid (``size`` = S, low-pass).

    Slices are read and cropped one at a time, so memory holds one full-size slice plus the
    cropped stack. ``make_mask((H, W))`` returns the retrospective mask on the grid for fully
    sampled data.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{argument}: file not found: {path}")
    with open_kspace(path, argument) as (k, file_mask):
        if not np.issubdtype(k.dtype, np.complexfloating):
            raise InputError(f"{argument}: expected complex k-space, got {k.dtype} {k.shape}")
        if k.ndim not in (2, 3, 4) or min(k.shape) < 1:
            raise InputError(f"{argument}: expected k-space (slices, H, W) or (slices, coils, H, W), got {k.shape}")
        multicoil = k.ndim == 4
        n = 1 if k.ndim == 2 else k.shape[0]
        h, w = k.shape[-2:]
        if mask_path is not None:
            mask = check_mask(read_npy(mask_path, mask_argument), (h, w), mask_argument)
        elif file_mask is not None:
            mask = check_mask(file_mask, (h, w), f"{argument} ({path.name}: 'mask')")
        else:  # sampled = non-zero somewhere (one pass over the slices)
            mask = torch.zeros(h, w, dtype=torch.bool)
            for i in range(n):
                mask |= (read_slice(k, i, path, argument).abs() > 0).any(0)
            if not bool(mask.any()):
                raise InputError(f"{argument}: the k-space of {path} is all zeros")
            mask = mask.float()
        fully_sampled = mask_path is None and file_mask is None and bool(mask.all())
        line_mask = mask.shape[0] == 1 or bool((mask == mask[:1]).all())
        readout_crop = h > w and (line_mask or fully_sampled)
        h_eff = w if readout_crop else h
        grid = (h_eff, w) if size is None else (size, size)
        resample = grid != (h_eff, w)
        factor = math.sqrt(grid[0] * grid[1] / (h_eff * w))
        cropped = []
        for i in range(n):
            ks = read_slice(k, i, path, argument)
            if readout_crop:
                ks = _crop_readout(ks, w)
            cropped.append(_resize_kspace(ks, size) * factor if resample else ks)
        kspace = torch.stack(cropped)
    notes = []
    if readout_crop:
        mask = mask[:1].expand(w, -1) if line_mask else mask[h // 2 - w // 2:h // 2 - w // 2 + w]
        notes.append(f"readout oversampling removed: image rows cropped {h} -> {w} (square field of view)")
    mask = mask.expand(h_eff, w).contiguous()
    if resample:
        mask = _resize_kspace(mask.to(torch.complex64), size).real.contiguous()
        notes.append(f"k-space {h_eff}x{w} -> central {size}x{size} (low-pass, pixel = FOV/{size}), "
                     f"values x sqrt({size}*{size}/({h_eff}*{w})) = {factor:.4g}")
    reference = None
    if fully_sampled:
        if make_mask is None:
            raise InputError(f"{argument}: {path} is fully sampled and no undersampling mask was given")
        reference = rss_images(kspace)
        mask = make_mask(grid).to(torch.float32).expand(*grid).contiguous()
        notes.append("fully sampled: undersampled retrospectively with the task's mask; the fully "
                     "sampled image is the reference")
    kspace = kspace * mask
    if not bool((kspace.abs() > 0).any()):
        raise InputError(f"{argument}: no measured k-space left on the {grid[0]}x{grid[1]} grid")
    scale = percentile_scale(rss_images(kspace))
    if not scale > 0:
        raise InputError(f"{argument}: the zero-filled image of {path} is zero")
    return KSpaceVolume(kspace=kspace / scale, mask=mask, scale=scale,
                        reference=None if reference is None else reference / scale, original_shape=(h, w),
                        multicoil=multicoil, source=str(path), notes=notes)


def kspace_on_grid(path: str | os.PathLike, mask_path: str | None, size: tuple[int, int] | None,
                   argument: str = "kspace", mask_argument: str = "kspace_mask"):
    """(y (1, C, H, W) complex64, single-coil MRI operator, scale) from a k-space .npy file on its own
    grid (``size`` None) or already on the grid ``size``, scaled so the zero-filled image's 99.5th
    percentile is 1. The mask is ``mask_path`` (.npy) or the non-zero locations."""
    k = read_npy(path, argument)
    if not np.iscomplexobj(k):
        raise InputError(f"{argument}: expected complex k-space, got {k.dtype}")
    k = k[None] if k.ndim == 2 else k
    if k.ndim != 3 or (size is not None and tuple(k.shape[-2:]) != tuple(size)):
        grid = "" if size is None else f" with (H, W) = {tuple(size)} (the reconstruction grid)"
        raise InputError(f"{argument}: expected shape (H, W) or (C, H, W){grid}, got {k.shape}")
    size = tuple(k.shape[-2:])
    if not np.isfinite(k).all():
        raise InputError(f"{argument}: contains NaN or Inf")
    if mask_path:
        mask = check_mask(read_npy(mask_path, mask_argument), tuple(size), mask_argument).expand(*size).contiguous()
        k = k * mask.numpy()
    else:
        mask = torch.from_numpy((np.abs(k) > 0).any(axis=0).astype(np.float32))
    y = torch.from_numpy(k.astype(np.complex64))[None]
    operator = measured_operator(mask)
    scale = max(percentile_scale(operator.pseudo_inverse(y).abs()), 1e-12)
    return y / scale, operator, scale

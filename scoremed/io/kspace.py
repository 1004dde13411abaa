"""Measured MRI k-space from fastMRI-style HDF5 files, brought to the prior's grid.

**File layout** (fastMRI): dataset ``kspace``, complex, (slices, H, W) single-coil or
(slices, coils, H, W) multi-coil, centred (DC at index H // 2, W // 2), zeros where not
sampled; optional ``mask`` (W,) of sampled phase-encode columns (challenge files). A
separate ``--kspace-mask`` (.npy, (W,), (1, W) or (H, W)) overrides it. Without either, the
sampled locations are the non-zero ones; when everything is sampled (fastMRI train/val
files) the data are undersampled retrospectively with the ``--accel/--mask`` mask made
on the prior's grid, and the fully sampled data give the reference for metrics.

**Resolution.** The shipped priors are 64 x 64, fastMRI k-space is e.g. 640 x 368:

1. *readout oversampling*: when H > W and whole columns are sampled (fully sampled along
   the readout), the image is cropped to the central W rows (1D inverse FFT, crop, FFT;
   exact, as fastMRI's own 320 x 320 crops do), making the field of view square;
2. *low-pass*: the central S x S block of k-space is kept (zero-padded if smaller), which
   is the orthonormal-FFT image of the whole field of view at S x S pixels, i.e. a
   low-pass-filtered, downsampled image. Values are multiplied by ``sqrt(S*S / (H*W))``
   so image intensities keep their scale. The mask is cropped identically. The result is
   therefore a *low-resolution* reconstruction (pixel size = FOV / S).

**Phase and coils.** The priors model real, non-negative images; measured images carry a
smooth phase. Coil maps come from ESPIRiT (``scoremed.operators.estimate_sensitivities``,
sigpy) on the fully sampled centre (calibration) block; single-coil data use one unit map.
The low-resolution phase of the calibration image is absorbed into the maps, so the
object is (close to) real and ``MultiCoilMRI`` applies to both cases.

**Scale.** Every slice is divided by one number per file, the 99.5th percentile of the
zero-filled (SENSE-combined) magnitude over all slices, so the prior sees images around
[0, 1]; outputs are multiplied back.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scoremed.errors import InputError

H5_SUFFIXES = (".h5", ".hdf5", ".hdf")
ESPIRIT_MIN_CALIB = 12  # fully sampled centre lines for ESPIRiT (6-wide kernels); fewer -> low-res maps
log = logging.getLogger("scoremed")


@dataclass
class KSpaceVolume:
    """Multi-slice k-space on the prior's grid (see the module docstring)."""
    kspace: torch.Tensor                   # (slices, coils, S, S) complex64, measured, scaled
    mask: torch.Tensor                     # (S, S) float32
    scale: float                           # divide-by factor applied to kspace (undo on output)
    reference: torch.Tensor | None         # (slices, 1, S, S) fully sampled magnitude, scaled
    original_shape: tuple[int, int]        # (H, W) of the file's k-space
    multicoil: bool
    source: str
    notes: list[str] = field(default_factory=list)


def is_hdf5(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in H5_SUFFIXES


def _fft1c(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(x, dim=dim), dim=dim, norm="ortho"), dim=dim)


def _ifft1c(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(x, dim=dim), dim=dim, norm="ortho"), dim=dim)


@contextlib.contextmanager
def _open_kspace(path: Path, argument: str):
    """(k-space array-like (slices, [coils,] H, W), file mask or None), read lazily (h5py / mmap)."""
    if not is_hdf5(path):
        try:
            array = np.load(path, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise InputError(f"{argument}: cannot read {path} as .npy: {exc}") from None
        yield array, None
        return
    import h5py

    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # h5py raises OSError and others for non-HDF5 or corrupt files
        raise InputError(f"{argument}: cannot read {path} as HDF5 ({type(exc).__name__}: {exc})") from None
    with f:
        if "kspace" not in f or not isinstance(f["kspace"], h5py.Dataset):
            raise InputError(f"{argument}: {path} has no 'kspace' dataset (keys: {sorted(f.keys())}); "
                             "expected the fastMRI layout")
        try:
            mask = np.asarray(f["mask"][()]) if "mask" in f else None
        except Exception as exc:
            raise InputError(f"{argument}: cannot read the 'mask' of {path} ({type(exc).__name__}: {exc})") from None
        yield f["kspace"], mask


def _slice(kspace, i: int, argument: str, path: Path) -> torch.Tensor:
    """Slice i as a complex64 tensor (coils, H, W)."""
    try:
        k = np.asarray(kspace[i] if kspace.ndim > 2 else kspace[()], dtype=np.complex64)
    except Exception as exc:
        raise InputError(f"{argument}: cannot read slice {i} of {path} ({type(exc).__name__}: {exc})") from None
    if not np.isfinite(k).all():
        raise InputError(f"{argument}: slice {i} of {path} contains NaN or Inf")
    return torch.from_numpy(k[None] if k.ndim == 2 else k)


def _read_mask(path: str, argument: str = "--kspace-mask") -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{argument}: cannot read {path} as .npy: {exc}") from None


def _check_mask(mask: np.ndarray, shape: tuple[int, int], where: str) -> torch.Tensor:
    """A (W,), (1, W) or (H, W) 0/1 mask as a float32 (H or 1, W) tensor."""
    h, w = shape
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf" or not np.isin(mask, (0, 1)).all():
        raise InputError(f"{where}: expected a 0/1 mask, got {mask.dtype} values {np.unique(mask)[:5]}")
    if mask.ndim == 1:
        mask = mask[None]
    if mask.ndim != 2 or mask.shape[1] != w or mask.shape[0] not in (1, h):
        raise InputError(f"{where}: the mask of shape {mask.shape} does not match the k-space (H, W) = {shape}; "
                         f"expected (W,) = ({w},), (1, {w}) or ({h}, {w})")
    if not mask.any():
        raise InputError(f"{where}: the mask samples nothing")
    return torch.from_numpy(mask.astype(np.float32))


def _resize_kspace(k: torch.Tensor, size: int) -> torch.Tensor:
    """Central size x size block of centred k-space (zero-padded where smaller), last two dims."""
    h, w = k.shape[-2:]
    out = torch.zeros((*k.shape[:-2], size, size), dtype=k.dtype)
    src_r0, dst_r0 = max(h // 2 - size // 2, 0), max(size // 2 - h // 2, 0)
    src_c0, dst_c0 = max(w // 2 - size // 2, 0), max(size // 2 - w // 2, 0)
    nr, nc = min(h, size), min(w, size)
    out[..., dst_r0:dst_r0 + nr, dst_c0:dst_c0 + nc] = k[..., src_r0:src_r0 + nr, src_c0:src_c0 + nc]
    return out


def calibration_width(mask: torch.Tensor) -> int:
    """Width of the largest centred square block that ``mask`` (S, S) samples completely."""
    s = mask.shape[-1]
    c = s // 2
    width = 0
    for half in range(1, s // 2 + 1):
        block = mask[..., c - half:c + half, c - half:c + half]
        if block.shape[-1] != 2 * half or not bool((block > 0).all()):
            break
        width = 2 * half
    return width


def read_kspace(path: str | os.PathLike, size: int, mask_path: str | None = None, make_mask=None,
                argument: str = "--kspace") -> KSpaceVolume:
    """Read a fastMRI HDF5 file (or a .npy k-space array of the same layout) onto an S x S grid.

    Slices are read and cropped one at a time, so memory holds one full-size slice plus the
    cropped stack. ``make_mask(size)`` returns the (S, S) retrospective mask for fully
    sampled data.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{argument}: file not found: {path}")
    with _open_kspace(path, argument) as (k, file_mask):
        if not np.issubdtype(k.dtype, np.complexfloating):
            raise InputError(f"{argument}: expected complex k-space, got {k.dtype} {k.shape}")
        if k.ndim not in (2, 3, 4) or min(k.shape) < 1:
            raise InputError(f"{argument}: expected k-space (slices, H, W) or (slices, coils, H, W), got {k.shape}")
        multicoil = k.ndim == 4
        n = 1 if k.ndim == 2 else k.shape[0]
        h, w = k.shape[-2:]
        if mask_path is not None:
            mask = _check_mask(_read_mask(mask_path), (h, w), "--kspace-mask")
        elif file_mask is not None:
            mask = _check_mask(file_mask, (h, w), f"{argument} ({path.name}: 'mask')")
        else:  # sampled = non-zero somewhere (one pass over the slices)
            mask = torch.zeros(h, w, dtype=torch.bool)
            for i in range(n):
                mask |= (_slice(k, i, argument, path).abs() > 0).any(0)
            if not bool(mask.any()):
                raise InputError(f"{argument}: the k-space of {path} is all zeros")
            mask = mask.float()
        fully_sampled = mask_path is None and file_mask is None and bool(mask.all())
        line_mask = mask.shape[0] == 1 or bool((mask == mask[:1]).all())
        readout_crop = h > w and (line_mask or fully_sampled)
        h_eff = w if readout_crop else h
        factor = math.sqrt(size * size / (h_eff * w))
        cropped = []
        for i in range(n):
            ks = _slice(k, i, argument, path)
            if readout_crop:
                start = h // 2 - w // 2
                ks = _fft1c(_ifft1c(ks, -2)[..., start:start + w, :], -2)
            cropped.append(_resize_kspace(ks, size) * factor)
        kspace = torch.stack(cropped)
    notes = []
    if readout_crop:
        mask = mask[:1].expand(w, -1) if line_mask else mask[h // 2 - w // 2:h // 2 - w // 2 + w]
        notes.append(f"readout oversampling removed: image rows cropped {h} -> {w} (square field of view)")
    mask = _resize_kspace(mask.expand(h_eff, w).to(torch.complex64), size).real.contiguous()
    if (h_eff, w) != (size, size):
        notes.append(f"k-space {h_eff}x{w} -> central {size}x{size} (low-pass, pixel = FOV/{size}), "
                     f"values x sqrt({size}*{size}/({h_eff}*{w})) = {factor:.4g}")
    reference = None
    if fully_sampled:
        if make_mask is None:
            raise InputError(f"{argument}: {path} is fully sampled and no undersampling mask was given")
        reference = _rss(kspace)
        mask = make_mask(size).to(torch.float32).expand(size, size).contiguous()
        notes.append("fully sampled: undersampled retrospectively with the --accel/--mask mask; the fully "
                     "sampled image is the reference")
    kspace = kspace * mask
    if not bool((kspace.abs() > 0).any()):
        raise InputError(f"{argument}: no measured k-space left in the central {size}x{size} block")
    zero_filled = _rss(kspace)
    scale = float(torch.quantile(zero_filled.flatten()[::max(1, zero_filled.numel() // 1_000_000)], 0.995))
    if not scale > 0:
        raise InputError(f"{argument}: the zero-filled image of {path} is zero")
    return KSpaceVolume(kspace=kspace / scale, mask=mask, scale=scale,
                        reference=None if reference is None else reference / scale, original_shape=(h, w),
                        multicoil=multicoil, source=str(path), notes=notes)


def _ifft2c(k: torch.Tensor) -> torch.Tensor:
    from scoremed.operators.mri import ifft2c

    return ifft2c(k)


def _rss(kspace: torch.Tensor) -> torch.Tensor:
    """(slices, coils, S, S) k-space -> (slices, 1, S, S) root-sum-of-squares image."""
    return _ifft2c(kspace).abs().square().sum(1, keepdim=True).sqrt()


def slice_operator(kspace: torch.Tensor, mask: torch.Tensor, multicoil: bool, argument: str = "--kspace"):
    """``MultiCoilMRI`` for one slice (coils, S, S): ESPIRiT maps (multi-coil) or one unit map,
    with the calibration image's phase absorbed so the object is real."""
    from scoremed.operators import MultiCoilMRI, estimate_sensitivities

    calib = calibration_width(mask)
    if multicoil and calib == 0:
        raise InputError(f"{argument}: multi-coil data need a fully sampled k-space centre to estimate coil "
                         "sensitivities; the mask samples none")
    low = _calibration_image(kspace, mask, calib) if calib > 0 else None
    if not multicoil:
        maps = torch.ones_like(kspace)
    else:
        maps = estimate_sensitivities(kspace, calib_width=min(calib, 24)) if calib >= ESPIRIT_MIN_CALIB else None
        if maps is None or not bool((maps.abs() > 0).any()):
            # too few centre lines for ESPIRiT's 6-wide kernels: normalised low-resolution coil images
            log.warning("%s: %d fully sampled centre lines on the %d-grid are too few for ESPIRiT (needs >= %d); "
                        "coil maps from the low-resolution coil images", argument, calib, mask.shape[-1],
                        ESPIRIT_MIN_CALIB)
            norm = low.abs().square().sum(0, keepdim=True).sqrt()
            maps = torch.where(norm > 0.05 * norm.max(), low / norm.clamp_min(1e-12), 0)
    if low is not None:
        combined = (maps.conj() * low).sum(0)
        maps = maps * torch.exp(1j * torch.angle(combined)).to(maps.dtype)
    return MultiCoilMRI(mask, maps.to(torch.complex64))


def _calibration_image(kspace: torch.Tensor, mask: torch.Tensor, calib: int) -> torch.Tensor:
    """Coil images (coils, S, S) of the fully sampled centre only (a low-resolution estimate)."""
    c, half = mask.shape[-1] // 2, max(calib // 2, 1)
    low = torch.zeros_like(kspace)
    rows = slice(0, None) if bool((mask == mask[:1]).all()) else slice(c - half, c + half)
    low[..., rows, c - half:c + half] = kspace[..., rows, c - half:c + half]
    return _ifft2c(low)

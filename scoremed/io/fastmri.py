"""Measured MRI k-space in: fastMRI-style HDF5 files (h5py) and .npy arrays of the same layout.

**Layout** (fastMRI): dataset ``kspace``, complex, (slices, H, W) single-coil or
(slices, coils, H, W) multi-coil, centred (DC at index H // 2, W // 2), zeros where not
sampled; optional ``mask`` (W,) of sampled phase-encode columns (challenge files). Files
are read lazily, one slice at a time. Bringing the data onto a prior's grid is
:mod:`scoremed.apps.kspace`.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from scoremed.errors import InputError

H5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def is_hdf5(path: str | os.PathLike) -> bool:
    """True if the file name ends in .h5, .hdf5 or .hdf (any case)."""
    return Path(path).suffix.lower() in H5_SUFFIXES


def read_npy(path: str | os.PathLike, argument: str = "path", mmap: bool = False) -> np.ndarray:
    """A .npy array (never unpickled); InputError naming ``argument`` if unreadable."""
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError) as exc:
        raise InputError(f"{argument}: cannot read {path} as .npy: {exc}") from None


@contextlib.contextmanager
def open_kspace(path: str | os.PathLike, argument: str = "path") -> Iterator[tuple[object, np.ndarray | None]]:
    """(k-space array-like (slices, [coils,] H, W), the file's mask or None), read lazily (h5py / mmap)."""
    path = Path(path)
    if not is_hdf5(path):
        yield read_npy(path, argument, mmap=True), None
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


def read_slice(kspace, i: int, path: str | os.PathLike, argument: str = "path") -> torch.Tensor:
    """Slice i of an open k-space array as a finite complex64 tensor (coils, H, W)."""
    try:
        k = np.asarray(kspace[i] if kspace.ndim > 2 else kspace[()], dtype=np.complex64)
    except Exception as exc:
        raise InputError(f"{argument}: cannot read slice {i} of {path} ({type(exc).__name__}: {exc})") from None
    if not np.isfinite(k).all():
        raise InputError(f"{argument}: slice {i} of {path} contains NaN or Inf")
    return torch.from_numpy(k[None] if k.ndim == 2 else k)


def check_mask(mask: np.ndarray, shape: tuple[int, int], argument: str = "mask") -> torch.Tensor:
    """A (W,), (1, W) or (H, W) 0/1 sampling mask for k-space (H, W) as a float32 (1 or H, W) tensor."""
    h, w = shape
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf" or not np.isin(mask, (0, 1)).all():
        raise InputError(f"{argument}: expected a 0/1 mask, got {mask.dtype} values {np.unique(mask)[:5]}")
    if mask.ndim == 1:
        mask = mask[None]
    if mask.ndim != 2 or mask.shape[1] != w or mask.shape[0] not in (1, h):
        raise InputError(f"{argument}: the mask of shape {mask.shape} does not match the k-space (H, W) = {shape}; "
                         f"expected (W,) = ({w},), (1, {w}) or ({h}, {w})")
    if not mask.any():
        raise InputError(f"{argument}: the mask samples nothing")
    return torch.from_numpy(mask.astype(np.float32))

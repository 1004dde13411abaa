"""2D images in and out: PNG/JPG/TIFF, .npy, single DICOM files and NIfTI slices.

Readers name the argument they were given (``argument``, default "path") in their errors.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from scoremed.errors import InputError
from scoremed.io.atomic import atomic_write
from scoremed.io.nifti import check_real_finite, is_nifti

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def read_array(path: str | os.PathLike, argument: str = "path") -> np.ndarray:
    """The pixel array of an image file as stored (PNG/JPG/TIFF/BMP, .npy, NIfTI, DICOM)."""
    path = Path(path)
    suffix = ".nii" if is_nifti(path) else path.suffix.lower()
    try:
        if suffix in IMAGE_SUFFIXES:
            from skimage.io import imread

            return np.asarray(imread(path))
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".nii":
            import nibabel as nib

            return np.asarray(nib.load(path).dataobj)
        if suffix in (".dcm", ".dicom", ""):
            import pydicom

            return pydicom.dcmread(path).pixel_array
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise InputError(f"{argument}: cannot read {path}: {exc}") from None
    except Exception as exc:  # readers raise many library-specific types for corrupt files
        raise InputError(f"{argument}: {path} is not a readable image ({type(exc).__name__}: {exc})") from None
    raise InputError(f"{argument}: unsupported file type {suffix!r} for {path}; expected PNG/JPG/TIFF, .npy, "
                     "NIfTI (.nii, .nii.gz) or DICOM (.dcm)")


def percentile_window(data: np.ndarray, low: float = 0.5, high: float = 99.5,
                      argument: str = "path") -> tuple[float, float]:
    """The (low, high) percentiles of ``data``, or its (min, max) when those coincide; InputError if constant."""
    values = np.asarray(data, dtype=np.float64)
    lo, hi = np.percentile(values, [low, high])
    if not hi > lo:
        lo, hi = values.min(), values.max()
    if not hi > lo:
        raise InputError(f"{argument}: the image is constant (value {lo:g}); nothing to reconstruct")
    return float(lo), float(hi)


def to_unit_range(image: np.ndarray, low: float = 0.5, high: float = 99.5, argument: str = "path") -> np.ndarray:
    """Clip to the [low, high] percentiles (:func:`percentile_window`) and scale to [0, 1] (float32)."""
    lo, hi = percentile_window(image, low, high, argument)
    return ((np.clip(np.asarray(image, dtype=np.float64), lo, hi) - lo) / (hi - lo)).astype(np.float32)


def load_image(path: str | os.PathLike, channels: int, size: tuple[int, int] | None,
               argument: str = "path") -> torch.Tensor:
    """An image file as a (channels, H, W) float32 tensor in [0, 1] resized to ``size`` = (H, W)
    (None: at the file's own size).

    RGB files become gray (mean) for one-channel priors; a 3D array that is not RGB is a
    volume, of which the middle slice along the last axis is used (whole volumes are read
    with :func:`scoremed.io.volumes.load_volume`).
    """
    from skimage.transform import resize

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{argument}: file not found: {path}")
    array = np.squeeze(read_array(path, argument))
    if array.size == 0:
        raise InputError(f"{argument}: {path} holds an empty array of shape {array.shape}")
    check_real_finite(array, path, argument)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        rgb = array[..., :3]
        array = np.moveaxis(rgb, -1, 0) if channels == 3 else rgb.mean(-1)[None]
    elif array.ndim == 3:
        array = array[..., array.shape[-1] // 2][None]
    elif array.ndim == 2:
        array = array[None]
    else:
        raise InputError(f"{argument}: expected a 2D image, an RGB image or a 3D volume, got shape {array.shape}")
    if array.shape[0] != channels:
        raise InputError(f"{argument}: the prior needs {channels}-channel images, {path} has {array.shape[0]} "
                         "channel(s)")
    array = to_unit_range(array, argument=argument)
    if size is None:
        return torch.from_numpy(array)
    resized = np.stack([resize(c, size, anti_aliasing=True, preserve_range=True) for c in array])
    return torch.from_numpy(np.clip(resized, 0, 1).astype(np.float32))


def save_png(path: str | os.PathLike, image: torch.Tensor) -> None:
    """Write a (C, H, W) image in [0, 1] as an 8-bit PNG, atomically."""
    from skimage.io import imsave

    array = (np.clip(image.detach().cpu().numpy(), 0, 1) * 255).round().astype(np.uint8)
    array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    atomic_write(path, lambda p: imsave(str(p), array, check_contrast=False), suffix=".png")

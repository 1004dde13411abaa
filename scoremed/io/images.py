"""2D images in and out: PNG/JPG/TIFF, .npy, single DICOM files and NIfTI slices."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from scoremed.errors import InputError
from scoremed.io_atomic import atomic_write

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _read_array(path: Path) -> np.ndarray:
    suffix = "".join(path.suffixes[-2:]).lower() if path.name.lower().endswith(".nii.gz") else path.suffix.lower()
    try:
        if suffix in IMAGE_SUFFIXES:
            from skimage.io import imread

            return np.asarray(imread(path))
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix in (".nii", ".nii.gz"):
            import nibabel as nib

            return np.asarray(nib.load(path).dataobj)
        if suffix in (".dcm", ".dicom", ""):
            import pydicom

            return pydicom.dcmread(path).pixel_array
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise InputError(f"--input: cannot read {path}: {exc}") from None
    except Exception as exc:  # readers raise many library-specific types for corrupt files
        raise InputError(f"--input: {path} is not a readable image ({type(exc).__name__}: {exc})") from None
    raise InputError(f"--input: unsupported file type {suffix!r} for {path}; expected PNG/JPG/TIFF, .npy, "
                     "NIfTI (.nii, .nii.gz) or DICOM (.dcm)")


def to_unit_range(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Percentile-clip to [low, high] and scale to [0, 1] (float32)."""
    image = image.astype(np.float64)
    lo, hi = np.percentile(image, [low, high])
    if hi <= lo:
        raise InputError(f"--input: image is constant (value {lo:g}); nothing to reconstruct")
    return ((np.clip(image, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def load_image(path: str | os.PathLike, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """An image file as a (channels, H, W) float32 tensor in [0, 1] resized to ``size``.

    RGB files become gray (mean) for one-channel priors; a 3D array that is not RGB is a
    volume, of which the middle slice along the last axis is used (reconstruct whole volumes
    with ``reconstruct.py --input vol.nii.gz``).
    """
    from skimage.transform import resize

    path = Path(path)
    if not path.is_file():
        raise InputError(f"--input: file not found: {path}")
    array = np.squeeze(_read_array(path))
    if array.size == 0:
        raise InputError(f"--input: {path} holds an empty array of shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise InputError(f"--input: {path} holds {array.dtype} data, expected a real-valued image")
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        rgb = array[..., :3]
        array = np.moveaxis(rgb, -1, 0) if channels == 3 else rgb.mean(-1)[None]
    elif array.ndim == 3:
        array = array[..., array.shape[-1] // 2][None]
    elif array.ndim == 2:
        array = array[None]
    else:
        raise InputError(f"--input: expected a 2D image, an RGB image or a 3D volume, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"--input: {path} contains NaN or Inf")
    if array.shape[0] != channels:
        raise InputError(f"--input: the prior needs {channels}-channel images, {path} has {array.shape[0]} channel(s)")
    array = to_unit_range(array)
    resized = np.stack([resize(c, size, anti_aliasing=True, preserve_range=True) for c in array])
    return torch.from_numpy(np.clip(resized, 0, 1).astype(np.float32))


def save_png(path: str | os.PathLike, image: torch.Tensor) -> None:
    """Write a (C, H, W) image in [0, 1] as an 8-bit PNG, atomically."""
    from skimage.io import imsave

    array = (np.clip(image.detach().cpu().numpy(), 0, 1) * 255).round().astype(np.uint8)
    array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    atomic_write(path, lambda p: imsave(str(p), array, check_contrast=False), suffix=".png")


def save_nifti_slice(path: str | os.PathLike, image: torch.Tensor, affine: np.ndarray | None = None) -> None:
    """Write a (C, H, W) image as a NIfTI file (H, W[, C]) with the given affine, atomically."""
    import nibabel as nib

    array = image.detach().cpu().numpy().astype(np.float32)
    array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    nifti = nib.Nifti1Image(array, np.eye(4) if affine is None else affine)
    atomic_write(path, lambda p: nib.save(nifti, str(p)), suffix=".nii.gz")

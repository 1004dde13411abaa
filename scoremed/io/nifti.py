"""NIfTI in and out (nibabel): volumes with their RAS affine and header, and single 2D slices."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from scoremed.errors import InputError
from scoremed.io.atomic import atomic_write

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: str | os.PathLike) -> bool:
    """True if the file name ends in .nii or .nii.gz (any case)."""
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def check_real_finite(data: np.ndarray, source, argument: str) -> None:
    """InputError unless ``data`` is real-valued (bool/int/float) and finite."""
    if data.dtype.kind not in "biuf":
        raise InputError(f"{argument}: {source} holds {data.dtype} data, expected a real-valued image")
    if not np.isfinite(data).all():
        raise InputError(f"{argument}: {source} contains NaN or Inf")


def read_nifti(path: str | os.PathLike, volume_index: int | None = None,
               argument: str = "path") -> tuple[np.ndarray, np.ndarray, object, list[str]]:
    """A 2D, 3D or 4D NIfTI file as (data (X, Y, Z) float32 in the file's units, RAS affine, header, notes).

    A 4D image needs ``volume_index``; a 2D image becomes one slice (X, Y, 1).
    """
    import nibabel as nib

    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt or truncated files
        raise InputError(f"{argument}: {path} is not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
    notes = []
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 4:
        if volume_index is None:
            raise InputError(f"volume_index: {path} is a 4D NIfTI image of shape {data.shape} ({data.shape[3]} "
                             f"volumes); choose one of 0..{data.shape[3] - 1}")
        if not 0 <= volume_index < data.shape[3]:
            raise InputError(f"volume_index: expected 0..{data.shape[3] - 1} for {path} {data.shape}, "
                             f"got {volume_index}")
        data = data[..., volume_index]
        notes.append(f"volume {volume_index} of {image.shape[3]}")
    elif volume_index not in (None, 0):
        raise InputError(f"volume_index: {path} is not 4D (shape {data.shape}); got {volume_index}")
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise InputError(f"{argument}: expected a 2D, 3D or 4D NIfTI image, {path} has shape {data.shape}")
    check_real_finite(data, path, argument)
    return data.astype(np.float32), np.asarray(image.affine, dtype=np.float64), image.header.copy(), notes


def nifti_image(data: np.ndarray, affine: np.ndarray, header=None):
    """A float32 Nifti1Image with ``affine`` (qform and sform) and the source header's units and codes."""
    import nibabel as nib

    data = np.asarray(data, dtype=np.float32)
    if header is not None:
        header = header.copy()
        header.set_data_dtype(np.float32)
        header.set_slope_inter(1.0, 0.0)
        image = nib.Nifti1Image(data, affine, header=header) if isinstance(header, nib.Nifti1Header) \
            else nib.Nifti1Image(data, affine)
        qcode = int(header["qform_code"]) if isinstance(header, nib.Nifti1Header) else 0
        scode = int(header["sform_code"]) if isinstance(header, nib.Nifti1Header) else 0
        image.set_qform(affine, code=qcode or 1)
        image.set_sform(affine, code=scode or 1)
    else:
        image = nib.Nifti1Image(data, affine)
        image.set_qform(affine, code=1)
        image.set_sform(affine, code=1)
    image.header["descrip"] = b"scoremed reconstruction"
    return image


def save_nifti(path: str | os.PathLike, data: np.ndarray, affine: np.ndarray, header=None) -> Path:
    """Write ``data`` as a float32 NIfTI file with ``affine``, atomically."""
    import nibabel as nib

    image = nifti_image(data, affine, header)
    suffix = ".nii.gz" if str(path).endswith(".gz") else ".nii"
    return atomic_write(path, lambda p: nib.save(image, str(p)), suffix=suffix)


def save_nifti_slice(path: str | os.PathLike, image: torch.Tensor, affine: np.ndarray | None = None) -> None:
    """Write a (C, H, W) image as a NIfTI file (H, W[, C]) with the given affine (default identity), atomically."""
    import nibabel as nib

    array = image.detach().cpu().numpy().astype(np.float32)
    array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    nifti = nib.Nifti1Image(array, np.eye(4) if affine is None else affine)
    atomic_write(path, lambda p: nib.save(nifti, str(p)), suffix=".nii.gz")

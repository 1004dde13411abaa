"""3D volumes in and out: NIfTI (nibabel) and DICOM series (pydicom, :mod:`scoremed.io.dicom`).

A :class:`Volume` is voxel data (X, Y, Z) in the file's own units with its RAS affine,
plus what is needed to write a result back in the same form: the NIfTI header, or the
DICOM headers of the source slices.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scoremed.errors import InputError
from scoremed.io.dicom import DicomSeries, is_dicom_file, read_series
from scoremed.io_atomic import atomic_write

NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass
class Volume:
    data: np.ndarray                    # (X, Y, Z) float32 in the file's units
    affine: np.ndarray                  # (4, 4) voxel -> RAS mm
    source: str
    kind: str                           # "nifti" or "dicom"
    header: object = None               # nibabel header (NIfTI input)
    dicom: DicomSeries | None = None    # source series (DICOM input)
    notes: list[str] = field(default_factory=list)

    @property
    def modality(self) -> str:
        return self.dicom.modality if self.dicom is not None else "OT"


def is_nifti(path: str | os.PathLike) -> bool:
    name = Path(path).name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def is_volume_input(path: str | os.PathLike) -> bool:
    """Folders (DICOM series), NIfTI files and DICOM files are read as volumes."""
    path = Path(path)
    return path.is_dir() or is_nifti(path) or is_dicom_file(path)


def _check_finite(data: np.ndarray, source, argument: str) -> None:
    if data.dtype.kind not in "biuf":
        raise InputError(f"{argument}: {source} holds {data.dtype} data, expected a real-valued image")
    if not np.isfinite(data).all():
        raise InputError(f"{argument}: {source} contains NaN or Inf")


def load_nifti(path: Path, volume_index: int | None = None, argument: str = "--input") -> Volume:
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
            raise InputError(f"{argument}: {path} is a 4D NIfTI image of shape {data.shape} ({data.shape[3]} volumes); "
                             f"choose one with --volume-index 0..{data.shape[3] - 1}")
        if not 0 <= volume_index < data.shape[3]:
            raise InputError(f"--volume-index: expected 0..{data.shape[3] - 1} for {path} {data.shape}, "
                             f"got {volume_index}")
        data = data[..., volume_index]
        notes.append(f"volume {volume_index} of {image.shape[3]}")
    elif volume_index not in (None, 0):
        raise InputError(f"--volume-index: {path} is not 4D (shape {data.shape}); got {volume_index}")
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise InputError(f"{argument}: expected a 2D, 3D or 4D NIfTI image, {path} has shape {data.shape}")
    _check_finite(data, path, argument)
    return Volume(data=data.astype(np.float32), affine=np.asarray(image.affine, dtype=np.float64), source=str(path),
                  kind="nifti", header=image.header.copy(), notes=notes)


def load_volume(path: str | os.PathLike, volume_index: int | None = None, argument: str = "--input") -> Volume:
    """A NIfTI file, a DICOM series folder or a DICOM file as a :class:`Volume`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{argument}: not found: {path}")
    if is_nifti(path):
        return load_nifti(path, volume_index, argument)
    if path.is_dir() or is_dicom_file(path):
        if volume_index not in (None, 0):
            raise InputError(f"--volume-index: only for 4D NIfTI input, {path} is DICOM")
        series = read_series(path, argument)
        _check_finite(series.data, path, argument)
        return Volume(data=series.data, affine=series.affine, source=str(path), kind="dicom", dicom=series)
    raise InputError(f"{argument}: {path} is neither a NIfTI file nor a DICOM file or folder")


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

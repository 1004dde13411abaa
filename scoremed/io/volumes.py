"""3D volumes in: NIfTI files (:mod:`scoremed.io.nifti`) and DICOM series (:mod:`scoremed.io.dicom`).

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
from scoremed.io.nifti import check_real_finite, is_nifti, read_nifti


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


def is_volume_input(path: str | os.PathLike) -> bool:
    """Folders (DICOM series), NIfTI files and DICOM files are read as volumes."""
    path = Path(path)
    return path.is_dir() or is_nifti(path) or is_dicom_file(path)


def load_volume(path: str | os.PathLike, volume_index: int | None = None, argument: str = "path") -> Volume:
    """A NIfTI file, a DICOM series folder or a DICOM file as a :class:`Volume`.

    ``volume_index`` picks one volume of a 4D NIfTI image; ``argument`` names ``path`` in errors.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{argument}: not found: {path}")
    if is_nifti(path):
        data, affine, header, notes = read_nifti(path, volume_index, argument)
        return Volume(data=data, affine=affine, source=str(path), kind="nifti", header=header, notes=notes)
    if path.is_dir() or is_dicom_file(path):
        if volume_index not in (None, 0):
            raise InputError(f"volume_index: only for 4D NIfTI input, {path} is DICOM")
        series = read_series(path, argument)
        check_real_finite(series.data, path, argument)
        return Volume(data=series.data, affine=series.affine, source=str(path), kind="dicom", dicom=series)
    raise InputError(f"{argument}: {path} is neither a NIfTI file nor a DICOM file or folder")

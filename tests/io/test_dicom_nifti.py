"""DICOM series and NIfTI volumes in: geometry tags, affines, pixel values, bad files."""
from __future__ import annotations

import os

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from medical_files import CT_SERIES, NIB_DATA  # noqa: E402
from scoremed.errors import InputError  # noqa: E402
from scoremed.io.dicom import read_series  # noqa: E402
from scoremed.io.nifti import is_nifti, read_nifti  # noqa: E402
from scoremed.io.volumes import is_volume_input, load_volume  # noqa: E402


def test_dicom_series_affine_matches_geometry_tags():
    series = read_series(CT_SERIES)
    first = series.datasets[0]
    lps = np.diag([-1, -1, 1, 1]) @ series.affine
    np.testing.assert_allclose(lps[:3, 3], [float(v) for v in first.ImagePositionPatient], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(lps[:3, :3], axis=0),
                               [float(first.PixelSpacing[1]), float(first.PixelSpacing[0]), 2.5], atol=1e-5)


def test_dicom_volume_holds_the_slices_in_modality_units_sorted_by_position():
    from pydicom.pixels import apply_modality_lut

    series = read_series(CT_SERIES)
    files = sorted((pydicom.dcmread(p) for p in CT_SERIES.iterdir()), key=lambda d: float(d.ImagePositionPatient[2]))
    assert series.data.shape == (16, 16, len(files))
    for k, ds in enumerate(files):
        np.testing.assert_array_equal(series.data[:, :, k].T, apply_modality_lut(ds.pixel_array, ds))


def test_nifti_reads_like_nibabel_and_is_detected_by_name():
    path = NIB_DATA / "anatomical.nii"
    data, affine, _header, notes = read_nifti(path)
    reference = nib.load(path)
    np.testing.assert_array_equal(data, np.asarray(reference.dataobj, dtype=np.float32))
    np.testing.assert_allclose(affine, reference.affine)
    assert notes == [] and is_nifti("a.NII.GZ") and is_nifti(path) and not is_nifti("a.nii.txt")
    assert is_volume_input(path) and is_volume_input(CT_SERIES) and not is_volume_input("x.png")


def test_load_volume_errors_are_input_errors_naming_the_argument(tmp_path):
    with pytest.raises(InputError, match="^path: not found"):
        load_volume(tmp_path / "missing.nii.gz")
    with pytest.raises(InputError, match="^volume_index: .*4D"):
        load_volume(NIB_DATA / "example4d.nii.gz")
    volume = load_volume(NIB_DATA / "example4d.nii.gz", volume_index=1)
    assert volume.data.shape == (128, 96, 24)
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes((NIB_DATA / "example4d.nii.gz").read_bytes()[:500])
    with pytest.raises(InputError, match="^input: .*broken.nii.gz"):
        load_volume(broken, argument="input")
    assert os.listdir(tmp_path) == ["broken.nii.gz"]

"""Medical data through ``scoremed reconstruct``: NIfTI volumes, DICOM series, fastMRI HDF5 k-space,
and bad input (one message naming the flag, exit code 2, nothing written).

Round trips use nibabel's and pydicom's bundled test files and the 16 x 16 smoke prior with 5 steps,
so every run takes a second or two.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")
h5py = pytest.importorskip("h5py")

from medical_files import CT_SERIES, DCM_DATA, MIXED_SERIES, NIB_DATA, write_fastmri  # noqa: E402
from scoremed.cli.common import run_cli  # noqa: E402
from scoremed.cli.reconstruct import main as reconstruct_main  # noqa: E402
from scoremed.io.dicom import read_series  # noqa: E402

FAST = ["--steps", "5", "--no-progress", "--seed", "0"]


def run(argv) -> int:
    return run_cli(reconstruct_main, [str(a) for a in argv])


def canonical(image):
    """Data and affine in the closest RAS orientation (compare volumes in world space)."""
    c = nib.as_closest_canonical(image)
    return np.asarray(c.dataobj, dtype=np.float64), c.affine


# --- volume round trips through reconstruct.py -------------------------------------------
def test_nifti_volume_round_trip_with_dicom_out(smoke_run, tmp_path):
    source = NIB_DATA / "anatomical.nii"
    out = tmp_path / "out"
    assert run(["--prior", smoke_run, "--input", source, "--out", out, "--dicom-out", "--batch-size", "16",
                *FAST]) == 0
    original = nib.load(source)
    recon = nib.load(out / "reconstruction.nii.gz")
    assert recon.shape == original.shape
    np.testing.assert_allclose(recon.affine, original.affine)
    assert nib.aff2axcodes(recon.affine) == nib.aff2axcodes(original.affine)
    data = recon.get_fdata()
    assert np.isfinite(data).all() and data.min() >= -1 and data.max() <= np.percentile(original.get_fdata(), 99.5) + 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"direct", "classical", "scoremed", "input"}   # no PnP-BM3D row for volumes unless asked
    assert len(metrics["scoremed"]["per_slice"]) == original.shape[2]
    assert {"psnr", "ssim", "seconds"} <= set(metrics["scoremed"])
    assert (out / "figure.png").is_file()
    # the DICOM series re-reads with the NIfTI's pixel data and geometry (in world space)
    series = read_series(out / "dicom")
    assert len(list((out / "dicom").iterdir())) == original.shape[2]
    dicom_data, dicom_affine = canonical(nib.Nifti1Image(series.data, series.affine))
    nifti_data, nifti_affine = canonical(recon)
    np.testing.assert_allclose(dicom_affine, nifti_affine, atol=1e-4)
    slope = float(series.datasets[0].RescaleSlope)
    np.testing.assert_allclose(dicom_data, nifti_data, atol=slope)
    ds = pydicom.dcmread(out / "dicom" / "IM0001.dcm")
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]


def test_dicom_series_round_trip_keeps_geometry_tags(smoke_run, tmp_path):
    out, dicom_out = tmp_path / "out", tmp_path / "series"
    assert run(["--prior", smoke_run, "--op", "ct", "--views", "8", "--input", CT_SERIES, "--out", out,
                "--dicom-out", dicom_out, "--intensity", "ct", "--ct-window", "-1000", "1000",
                "--batch-size", "2", *FAST]) == 0
    source = read_series(CT_SERIES)
    recon = nib.load(out / "reconstruction.nii.gz")
    assert recon.shape == source.data.shape
    np.testing.assert_allclose(recon.affine, source.affine, atol=1e-6)
    written = read_series(dicom_out)
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-6)
    slope = float(written.datasets[0].RescaleSlope)
    np.testing.assert_allclose(written.data, recon.get_fdata(), atol=slope)
    assert -1000 - slope <= written.data.min() and written.data.max() <= 1000 + slope
    uids = set()
    for old, new in zip(source.datasets, written.datasets):
        for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness"):
            assert [float(v) for v in np.atleast_1d(new.get(tag))] == [float(v) for v in np.atleast_1d(old.get(tag))]
        assert new.SeriesInstanceUID != old.SeriesInstanceUID
        assert new.StudyInstanceUID == old.StudyInstanceUID and new.PatientID == old.PatientID
        assert new.SOPInstanceUID != old.SOPInstanceUID
        assert list(new.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        uids.add(new.SeriesInstanceUID)
    assert len(uids) == 1


def test_single_dicom_file_and_4d_nifti_volume_index(smoke_run, tmp_path):
    out = tmp_path / "single"
    assert run(["--prior", smoke_run, "--input", DCM_DATA / "MR_small.dcm", "--out", out, *FAST]) == 0
    assert nib.load(out / "reconstruction.nii.gz").shape == (64, 64, 1)
    out4d = tmp_path / "4d"
    assert run(["--prior", smoke_run, "--input", NIB_DATA / "functional.nii", "--volume-index", "5",
                "--out", out4d, "--samples", "2", *FAST]) == 0
    source = nib.load(NIB_DATA / "functional.nii")
    recon = nib.load(out4d / "reconstruction.nii.gz")
    assert recon.shape == source.shape[:3]
    np.testing.assert_allclose(recon.affine, source.affine)
    assert nib.load(out4d / "std.nii.gz").shape == source.shape[:3]


# --- fastMRI HDF5 k-space ----------------------------------------------------------------
@pytest.mark.parametrize("multicoil", [True, False])
def test_fastmri_hdf5_reconstructs(smoke_run, tmp_path, multicoil):
    path = tmp_path / "file.h5"
    write_fastmri(path, multicoil=multicoil)
    out = tmp_path / "out"
    assert run(["--prior", smoke_run, "--kspace", path, "--accel", "2", "--center-fraction", "0.5", "--out", out,
                "--dicom-out", *FAST]) == 0
    recon = nib.load(out / "reconstruction.nii.gz")
    assert recon.shape == (16, 16, 2)
    assert np.isfinite(recon.get_fdata()).all() and recon.get_fdata().min() >= 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["scoremed"]["per_slice"]) == 2
    assert metrics["direct"]["psnr"] > 15          # zero-filled vs the fully sampled low-resolution image
    assert len(list((out / "dicom").iterdir())) == 2


def test_undersampled_fastmri_file_with_mask_has_no_reference(smoke_run, tmp_path):
    mask = np.zeros(32, np.float32)
    mask[8:24] = 1
    mask[::3] = 1
    path = tmp_path / "challenge.h5"
    write_fastmri(path, slices=1, mask=mask)
    with h5py.File(path, "a") as f:
        f["kspace"][...] = f["kspace"][()] * mask
    out = tmp_path / "out"
    assert run(["--prior", smoke_run, "--kspace", path, "--out", out, *FAST]) == 0
    assert nib.load(out / "reconstruction.nii.gz").shape == (16, 16, 1)
    assert not (out / "metrics.json").exists()


# --- bad input: one message, exit code 2, nothing written ----------------------------------
def _truncated_series(tmp_path: Path) -> Path:
    folder = tmp_path / "truncated_series"
    shutil.copytree(CT_SERIES, folder)
    victim = sorted(folder.iterdir())[2]
    victim.write_bytes(victim.read_bytes()[:-200])
    return folder


def _cases(tmp_path: Path, smoke_run) -> dict:
    empty = tmp_path / "empty"
    empty.mkdir()
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    only_text = tmp_path / "only_text"
    only_text.mkdir()
    (only_text / "README").write_text("hello")
    mixed = tmp_path / "mixed"
    shutil.copytree(MIXED_SERIES, mixed)
    bad_mask_h5 = tmp_path / "bad_mask.h5"
    write_fastmri(bad_mask_h5, slices=1, mask=np.ones(30, np.float32))
    good_h5 = tmp_path / "good.h5"
    write_fastmri(good_h5, slices=1)
    np.save(tmp_path / "mask.npy", np.ones((5, 7), np.float32))
    no_kspace = tmp_path / "nokspace.h5"
    with h5py.File(no_kspace, "w") as f:
        f.create_dataset("image", data=np.zeros((2, 4, 4)))
    not_h5 = tmp_path / "fake.h5"
    not_h5.write_bytes(b"not hdf5 at all")
    series_out = tmp_path / "series_out"
    series_out.mkdir()
    (series_out / "old.dcm").write_bytes(b"x")
    return {
        "truncated dicom file": (["--input", DCM_DATA / "MR_truncated.dcm"], "MR_truncated.dcm"),
        "truncated slice in a series": (["--input", _truncated_series(tmp_path)], "truncated_series"),
        "dicom without pixels": (["--input", DCM_DATA / "rtplan_truncated.dcm"], "rtplan_truncated.dcm"),
        "dicom without meta": (["--input", DCM_DATA / "no_meta.dcm"], "no_meta.dcm"),
        "non-image file": (["--input", text], "notes.txt"),
        "folder without images": (["--input", only_text], "no DICOM images"),
        "empty folder": (["--input", empty], "empty"),
        "several series": (["--input", mixed], "3 DICOM series"),
        "4d nifti without index": (["--input", NIB_DATA / "example4d.nii.gz"], "--volume-index"),
        "volume index out of range": (["--input", NIB_DATA / "example4d.nii.gz", "--volume-index", "7"],
                                      "--volume-index"),
        "kspace mask mismatch (file)": (["--kspace", bad_mask_h5], "does not match the k-space"),
        "kspace mask mismatch (option)": (["--kspace", good_h5, "--kspace-mask", tmp_path / "mask.npy"],
                                          "--kspace-mask"),
        "hdf5 without kspace": (["--kspace", no_kspace], "no 'kspace' dataset"),
        "not hdf5": (["--kspace", not_h5], "cannot read"),
        "dicom-out not empty": (["--input", CT_SERIES, "--dicom-out", series_out], "--dicom-out"),
        "slice axis": (["--input", NIB_DATA / "anatomical.nii", "--slice-axis", "3"], "--slice-axis"),
    }


def test_bad_input_exits_2_and_writes_nothing(smoke_run, tmp_path, capsys):
    for name, (argv, expected) in _cases(tmp_path, smoke_run).items():
        out = tmp_path / f"out_{name.replace(' ', '_')}"
        code = run(["--prior", smoke_run, "--out", out, *argv, *FAST])
        err = capsys.readouterr().err
        assert code == 2, name
        assert err.startswith("error: ") and expected in err, (name, err)
        assert not out.exists(), name

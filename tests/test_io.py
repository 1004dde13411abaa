"""Medical data in and out (issue 6): NIfTI volumes, DICOM series, fastMRI HDF5 k-space, bad input.

Round trips use nibabel's and pydicom's bundled test files (I/O only; never used for training
or tuning) and the 16 x 16 smoke prior with 5 steps, so every CLI run takes a second or two.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")
h5py = pytest.importorskip("h5py")

from scoremed.cli.common import run_cli  # noqa: E402
from scoremed.cli.reconstruct import main as reconstruct_main  # noqa: E402
from scoremed.errors import InputError  # noqa: E402
from scoremed.io.dicom import read_series  # noqa: E402
from scoremed.io.kspace import calibration_width, read_kspace, slice_operator  # noqa: E402
from scoremed.io.slices import IntensityWindow, SliceGeometry, fit_to_size, restore_size  # noqa: E402
from scoremed.io.volumes import load_volume  # noqa: E402
from scoremed.operators.mri import fft2c  # noqa: E402

NIB_DATA = Path(nib.__file__).parent / "tests" / "data"
DCM_DATA = Path(pydicom.__file__).parent / "data" / "test_files"
CT_SERIES = DCM_DATA / "dicomdirtests" / "98892001" / "CT5N"     # 5 axial CT slices, 16 x 16
MIXED_SERIES = DCM_DATA / "dicomdirtests" / "98892003" / "MR1"   # 3 files of 3 series
FAST = ["--steps", "5", "--no-progress", "--seed", "0"]


def run(argv, capsys=None) -> int:
    return run_cli(reconstruct_main, [str(a) for a in argv])


def canonical(image):
    """Data and affine in the closest RAS orientation (compare volumes in world space)."""
    c = nib.as_closest_canonical(image)
    return np.asarray(c.dataobj, dtype=np.float64), c.affine


# --- geometry helpers --------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_geometry_is_an_exact_round_trip(axis):
    volume = load_volume(NIB_DATA / "anatomical.nii")
    geometry = SliceGeometry.for_volume(volume.data.shape, volume.affine, axis)
    slices = geometry.to_slices(volume.data)
    assert slices.shape == (len(geometry), *geometry.slice_shape())
    assert np.array_equal(geometry.from_slices(slices), volume.data)


def test_axial_dicom_slices_are_shown_like_pixel_array():
    from pydicom.pixels import apply_modality_lut

    series = read_series(CT_SERIES)
    slices = SliceGeometry.for_volume(series.data.shape, series.affine, 2).to_slices(series.data)
    files = sorted((pydicom.dcmread(p) for p in CT_SERIES.iterdir()), key=lambda d: float(d.ImagePositionPatient[2]))
    for k, ds in enumerate(files):
        np.testing.assert_array_equal(slices[k], apply_modality_lut(ds.pixel_array, ds))


def test_dicom_series_affine_matches_geometry_tags():
    series = read_series(CT_SERIES)
    first = series.datasets[0]
    lps = np.diag([-1, -1, 1, 1]) @ series.affine
    np.testing.assert_allclose(lps[:3, 3], [float(v) for v in first.ImagePositionPatient], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(lps[:3, :3], axis=0),
                               [float(first.PixelSpacing[1]), float(first.PixelSpacing[0]), 2.5], atol=1e-5)


def test_fit_and_restore_size_keep_shape_and_aspect():
    x = torch.rand(3, 1, 20, 12)
    small = fit_to_size(x, 16)
    assert small.shape == (3, 1, 16, 16)
    back = restore_size(small, (20, 12))
    assert back.shape == x.shape
    constant = restore_size(fit_to_size(torch.full((1, 1, 20, 12), 0.5), 16), (20, 12))
    assert torch.allclose(constant[..., 3:-3, 3:-3], torch.tensor(0.5), atol=1e-5)
    window = IntensityWindow(-1000.0, 1000.0)
    assert window.restore(window.normalise(np.array([0.0])))[0] == pytest.approx(0.0, abs=0.1)


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
    assert set(metrics) >= {"direct", "classical", "scoremed"}
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
def phantom(h: int, w: int, shift: float = 0.0) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    yy, xx = (yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2)
    image = ((xx / 0.7) ** 2 + (yy / 0.8) ** 2 < 1) * 0.6
    return image + ((xx - 0.2 - shift) ** 2 / 0.04 + (yy + 0.1) ** 2 / 0.09 < 1) * 0.4


def coil_maps(coils: int, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    centres = [(0, 0), (0, w), (h, 0), (h, w)][:coils]
    return np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.8 * max(h, w)) ** 2)) * np.exp(1j * c)
                     for c, (cy, cx) in enumerate(centres)])


def write_fastmri(path: Path, slices=2, coils=4, h=48, w=32, multicoil=True, mask=None) -> np.ndarray:
    """A small file with the fastMRI layout: ``kspace`` (slices, [coils,] H, W), optional ``mask`` (W,)."""
    yy, xx = np.mgrid[:h, :w]
    images = np.stack([phantom(h, w, 0.1 * s) for s in range(slices)])
    objects = images * np.exp(1j * 0.5 * (xx / w + yy / h))       # smooth phase, like real data
    coil_images = coil_maps(coils, h, w)[None] * objects[:, None] if multicoil else objects
    kspace = fft2c(torch.from_numpy(coil_images.astype(np.complex64))).numpy()
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        if mask is not None:
            f.create_dataset("mask", data=mask)
        f.attrs["acquisition"] = "CORPD_FBK"
    return images


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


def test_kspace_crop_keeps_intensity_and_espirit_maps_combine_to_the_object(tmp_path):
    path = tmp_path / "big.h5"
    images = write_fastmri(path, slices=1, coils=4, h=64, w=64)
    data = read_kspace(path, 32, make_mask=lambda s: torch.ones(s, s))
    assert data.kspace.shape == (1, 4, 32, 32) and data.reference.shape == (1, 1, 32, 32)
    # the low-pass image keeps the intensity scale of the full-resolution image
    maps = coil_maps(4, 64, 64)
    full_rss = images[0] * np.sqrt((np.abs(maps) ** 2).sum(0))
    assert float(data.reference.max()) * data.scale == pytest.approx(full_rss.max(), rel=0.15)
    assert calibration_width(data.mask) == 32
    operator = slice_operator(data.kspace[0], data.mask, multicoil=True)     # ESPIRiT (calibration 24)
    combined = operator.pseudo_inverse(data.kspace[:1])[0, 0]
    reference = data.reference[0, 0]
    inside = reference > 0.3 * reference.max()
    corr = np.corrcoef(combined[inside].numpy(), reference[inside].numpy())[0, 1]
    assert corr > 0.95
    assert float(combined.abs().max()) == pytest.approx(float(reference.max()), rel=0.2)


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


def test_load_volume_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_volume(tmp_path / "missing.nii.gz")
    with pytest.raises(InputError, match="4D"):
        load_volume(NIB_DATA / "example4d.nii.gz")
    volume = load_volume(NIB_DATA / "example4d.nii.gz", volume_index=1)
    assert volume.data.shape == (128, 96, 24)
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes((NIB_DATA / "example4d.nii.gz").read_bytes()[:500])
    with pytest.raises(InputError, match="broken.nii.gz"):
        load_volume(broken)
    assert os.listdir(tmp_path) == ["broken.nii.gz"]

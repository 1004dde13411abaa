"""``scoremed reconstruct`` with a resolution-free prior (the smoke-patch prior, 32 x 32 patches): images,
volumes, k-space and sinograms at their own grid, outputs with the input's geometry; ``--resize`` on
request; too-small or unfit sizes refused with one message, writing nothing."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

nib = pytest.importorskip("nibabel")
pytest.importorskip("h5py")

from medical_files import CT_SERIES, phantom, write_fastmri  # noqa: E402
from scoremed.cli import sample  # noqa: E402
from scoremed.cli.common import run_cli  # noqa: E402
from scoremed.cli.reconstruct import main as reconstruct_main  # noqa: E402
from scoremed.io.dicom import read_series  # noqa: E402
from scoremed.operators import CT  # noqa: E402

FAST = ["--steps", "3", "--no-progress", "--seed", "0", "--no-extra-baselines"]   # no PnP-BM3D row: fast


def run(argv) -> int:
    return run_cli(reconstruct_main, [str(a) for a in argv])


def figure_size(path) -> tuple[int, int]:
    from skimage.io import imread

    return imread(path).shape[:2]


def test_image_file_is_reconstructed_at_its_own_size(smoke_patch_run, tmp_path):
    image = tmp_path / "wide.npy"
    np.save(image, phantom(40, 56).astype(np.float32))
    out = tmp_path / "out"
    assert run(["--prior", smoke_patch_run, "--input", image, "--accel", "2", "--out", out, *FAST]) == 0
    assert nib.load(out / "reconstruction.nii.gz").shape == (40, 56)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"direct", "classical", "scoremed"}
    # the direct result is NumPy's zero-filled inverse FFT of the 40 x 56 image: simulated at its own grid
    from skimage.metrics import peak_signal_noise_ratio

    from scoremed.io.images import to_unit_range
    from scoremed.tasks.mri import Options, make_mask

    truth = to_unit_range(np.load(image)).astype(np.float64)
    mask = make_mask((40, 56), Options(accel=2, seed=0)).numpy()
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(truth), norm="ortho")) * mask
    direct = np.real(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace), norm="ortho")))
    expected = peak_signal_noise_ratio(truth, np.clip(direct, 0, 1), data_range=1.0)
    assert metrics["direct"]["psnr"] == pytest.approx(expected, abs=1e-3)
    height, width = figure_size(out / "figure.png")
    assert height >= 40 and width >= 5 * 56          # five panels, each at least at the image's resolution


def _oblique_volume(path, shape=(40, 48, 3), zooms=(0.8, 0.9, 2.5)):
    theta = 0.3
    rotation = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(zooms)
    affine[:3, 3] = (-20.0, 10.0, 5.0)
    data = np.stack([phantom(shape[0], shape[1], 0.05 * k) for k in range(shape[2])], -1) * 900.0
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), path)
    return nib.load(path)


def test_nifti_volume_keeps_shape_affine_and_spacing(smoke_patch_run, tmp_path):
    source = _oblique_volume(tmp_path / "vol.nii.gz")
    out = tmp_path / "out"
    assert run(["--prior", smoke_patch_run, "--input", tmp_path / "vol.nii.gz", "--accel", "2", "--out", out,
                "--batch-size", "3", *FAST]) == 0
    recon = nib.load(out / "reconstruction.nii.gz")
    assert recon.shape == source.shape
    np.testing.assert_allclose(recon.affine, source.affine, atol=1e-6)
    np.testing.assert_allclose(recon.header.get_zooms(), source.header.get_zooms(), atol=1e-6)
    info = json.loads((out / "metrics.json").read_text())["input"]
    assert info["grid"] == [48, 40] and "own grid" in info["metrics"]   # axial slices: rows = Y, columns = X


def test_dicom_series_keeps_its_grid_and_geometry_tags(smoke_patch_run, tmp_path):
    from scoremed.io.dicom import encode_series, series_datasets, write_series

    volume = _oblique_volume(tmp_path / "vol.nii.gz")
    write_series(tmp_path / "series", encode_series(series_datasets(volume.get_fdata(), volume.affine, None, "MR")))
    source = read_series(tmp_path / "series")
    out, dicom_out = tmp_path / "out", tmp_path / "dicom_out"
    assert run(["--prior", smoke_patch_run, "--input", tmp_path / "series", "--accel", "2", "--out", out,
                "--dicom-out", dicom_out, "--batch-size", "3", *FAST]) == 0
    written = read_series(dicom_out)
    assert written.data.shape == source.data.shape == volume.shape
    assert json.loads((out / "metrics.json").read_text())["input"]["grid"] == [48, 40]
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-5)
    for old, new in zip(source.datasets, written.datasets):
        assert (new.Rows, new.Columns) == (old.Rows, old.Columns)
        for tag in ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient"):
            np.testing.assert_allclose([float(v) for v in new.get(tag)], [float(v) for v in old.get(tag)], atol=1e-5)


def test_resize_reconstructs_on_a_smaller_grid_and_resamples_back(smoke_patch_run, tmp_path):
    source = _oblique_volume(tmp_path / "vol.nii.gz")
    out = tmp_path / "out"
    assert run(["--prior", smoke_patch_run, "--input", tmp_path / "vol.nii.gz", "--resize", "32", "--accel", "2",
                "--out", out, *FAST]) == 0
    recon = nib.load(out / "reconstruction.nii.gz")
    assert recon.shape == source.shape
    np.testing.assert_allclose(recon.affine, source.affine, atol=1e-6)
    assert json.loads((out / "metrics.json").read_text())["input"]["grid"] == [32, 32]


def test_small_dicom_series_is_refused_and_reconstructs_with_resize(smoke_patch_run, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--prior", smoke_patch_run, "--op", "ct", "--views", "8", "--input", CT_SERIES, "--intensity", "ct"]
    assert run([*args, "--out", out, *FAST]) == 2
    err = capsys.readouterr().err
    assert "--input: every slice of CT5N is 16 x 16 pixels, smaller than the 32 x 32 patches" in err
    assert not out.exists()
    assert run([*args, "--resize", "32", "--out", out, "--dicom-out", *FAST]) == 0
    series = read_series(CT_SERIES)
    recon = nib.load(out / "reconstruction.nii.gz")
    assert recon.shape == series.data.shape
    np.testing.assert_allclose(recon.affine, series.affine, atol=1e-6)
    np.testing.assert_allclose(read_series(out / "dicom").affine, series.affine, atol=1e-6)


@pytest.mark.parametrize("h,w,grid", [(40, 56, (40, 56)), (80, 36, (36, 36))], ids=["wide", "oversampled-readout"])
def test_fastmri_kspace_keeps_the_file_grid(smoke_patch_run, tmp_path, h, w, grid):
    path = tmp_path / "file.h5"
    write_fastmri(path, slices=2, coils=4, h=h, w=w)
    out = tmp_path / "out"
    assert run(["--prior", smoke_patch_run, "--kspace", path, "--accel", "2", "--center-fraction", "0.4",
                "--out", out, *FAST]) == 0
    recon = nib.load(out / "reconstruction.nii.gz")
    assert recon.shape == (grid[1], grid[0], 2)                   # (columns, rows, slices)
    np.testing.assert_allclose(recon.header.get_zooms(), (1.0, 1.0, 1.0))   # one file pixel per voxel
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["input"]["grid"] == list(grid) and metrics["input"]["kspace_shape"] == [h, w]
    assert not any("low-pass" in note for note in metrics["input"]["notes"])


def test_sinogram_at_its_detector_count_and_angles(smoke_patch_run, tmp_path):
    truth = torch.from_numpy(phantom(40, 40).astype(np.float32))[None, None]
    angles = np.sort(np.random.default_rng(0).uniform(0, np.pi, 7))
    np.save(tmp_path / "angles.npy", angles)
    np.save(tmp_path / "sino.npy", CT(40, angles)(truth)[0, 0].numpy())
    out = tmp_path / "out"
    assert run(["--prior", smoke_patch_run, "--op", "ct", "--sinogram", tmp_path / "sino.npy", "--sinogram-angles",
                tmp_path / "angles.npy", "--out", out, *FAST]) == 0
    assert nib.load(out / "reconstruction.nii.gz").shape == (40, 40)


def test_default_demo_reconstructs_the_native_test_slice(smoke_patch_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["--prior", smoke_patch_run, "--op", "mri", "--out", out, "--steps", "1", "--no-progress",
                "--no-extra-baselines"]) == 0
    assert "scoremed" in capsys.readouterr().out
    assert nib.load(out / "reconstruction.nii.gz").shape == (256, 256)
    height, width = figure_size(out / "figure.png")
    assert height >= 256 and width >= 5 * 256


def test_unfit_sizes_exit_2_naming_the_problem_and_write_nothing(smoke_patch_run, smoke_run, tmp_path, capsys):
    small, wide = tmp_path / "small.npy", tmp_path / "wide.npy"
    np.save(small, phantom(20, 40).astype(np.float32))
    np.save(wide, phantom(40, 56).astype(np.float32))
    np.save(tmp_path / "k.npy", np.ones((24, 40), np.complex64))
    np.save(tmp_path / "sino.npy", np.ones((8, 40), np.float32))
    np.save(tmp_path / "angles.npy", np.linspace(0, 3, 5))
    write_fastmri(tmp_path / "small.h5", slices=1, h=24, w=24)
    cases = {
        "small image": (["--input", small], "--input: the image is 20 x 40 pixels, smaller than the 32 x 32 patches"),
        "small k-space": (["--kspace", tmp_path / "k.npy"], "--kspace: the k-space is 24 x 40 pixels"),
        "small k-space file": (["--kspace", tmp_path / "small.h5"], "--kspace: the k-space grid of small.h5 is 24 x 24"),
        "non-square ct": (["--op", "ct", "--input", wide], "--input: the image (40 x 56 pixels) does not fit the ct "
                                                         "task"),
        "angles mismatch": (["--op", "ct", "--sinogram", tmp_path / "sino.npy", "--sinogram-angles",
                             tmp_path / "angles.npy"], "--sinogram: expected a real array (n_views=5"),
        "resize a sinogram": (["--op", "ct", "--sinogram", tmp_path / "sino.npy", "--views", "8", "--resize", "32"],
                              "--resize: not for a measured sinogram"),
        "resize below the patches": (["--input", wide, "--resize", "16"], "--resize: 16 is smaller than the 32"),
    }
    for name, (argv, expected) in cases.items():
        out = tmp_path / f"out_{name.replace(' ', '_')}"
        assert run(["--prior", smoke_patch_run, "--out", out, *argv, *FAST]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err, (name, err)
        assert not out.exists(), name
    out = tmp_path / "out_fixed"
    assert run(["--prior", smoke_run, "--input", wide, "--resize", "32", "--out", out, *FAST]) == 2
    assert "--resize: prior" in capsys.readouterr().err and not out.exists()


def test_sample_at_any_size_needs_a_shape(smoke_patch_run, tmp_path, capsys):
    assert run_cli(sample.main, ["--prior", str(smoke_patch_run), "-n", "2", "--shape", "40", "24", "--steps", "3",
                                 "--out", str(tmp_path)]) == 0
    assert np.load(tmp_path / "samples.npy").shape == (2, 1, 40, 24)
    assert run_cli(sample.main, ["--prior", str(smoke_patch_run), "--steps", "3", "--out", str(tmp_path / "x")]) == 2
    assert "error: --shape: prior 'smoke-patch' is resolution-free" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

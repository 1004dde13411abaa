"""Measured k-space onto the prior's grid: intensity scale of the low-pass crop, readout-oversampling
crop, coil maps that combine to the object."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("h5py")

from medical_files import coil_maps, write_fastmri  # noqa: E402
from scoremed.apps.kspace import kspace_on_grid, read_kspace  # noqa: E402
from scoremed.operators.mri import ifft2c  # noqa: E402
from scoremed.tasks.mri import calibration_width, coil_operator  # noqa: E402


def test_kspace_crop_keeps_intensity_and_espirit_maps_combine_to_the_object(tmp_path):
    path = tmp_path / "big.h5"
    images = write_fastmri(path, slices=1, coils=4, h=64, w=64)
    data = read_kspace(path, 32, make_mask=torch.ones)
    assert data.kspace.shape == (1, 4, 32, 32) and data.reference.shape == (1, 1, 32, 32)
    # the low-pass image keeps the intensity scale of the full-resolution image
    maps = coil_maps(4, 64, 64)
    full_rss = images[0] * np.sqrt((np.abs(maps) ** 2).sum(0))
    assert float(data.reference.max()) * data.scale == pytest.approx(full_rss.max(), rel=0.15)
    assert calibration_width(data.mask) == 32
    operator = coil_operator(data.kspace[0], data.mask, multicoil=True)     # ESPIRiT (calibration 24)
    combined = operator.pseudo_inverse(data.kspace[:1])[0, 0]
    reference = data.reference[0, 0]
    inside = reference > 0.3 * reference.max()
    corr = np.corrcoef(combined[inside].numpy(), reference[inside].numpy())[0, 1]
    assert corr > 0.95
    assert float(combined.abs().max()) == pytest.approx(float(reference.max()), rel=0.2)


def test_readout_oversampling_is_cropped_to_the_central_rows_of_the_image(tmp_path):
    path = tmp_path / "tall.h5"
    images = write_fastmri(path, slices=1, coils=1, h=32, w=16, multicoil=False)
    data = read_kspace(path, 16, make_mask=torch.ones)
    assert any("readout oversampling" in note for note in data.notes)
    # the fully sampled reference is the central 16 rows of the 32 x 16 magnitude image (same pixels)
    np.testing.assert_allclose(data.reference[0, 0].numpy() * data.scale, images[0, 8:24], atol=1e-4)


def test_kspace_on_the_grid_is_scaled_to_its_zero_filled_percentile(tmp_path):
    k = np.fft.fftshift(np.fft.fft2(np.random.default_rng(0).random((8, 8)), norm="ortho")).astype(np.complex64)
    k[:, ::2] = 0
    path = tmp_path / "k.npy"
    np.save(path, k)
    y, operator, scale = kspace_on_grid(path, None, (8, 8))
    zero_filled = ifft2c(torch.from_numpy(k)).real.abs()
    assert scale == pytest.approx(float(torch.quantile(zero_filled.flatten(), 0.995)), rel=1e-5)
    torch.testing.assert_close(y[0, 0] * scale, torch.from_numpy(k))
    assert operator.mask.sum() == 32


def _rss_numpy(kspace: np.ndarray) -> np.ndarray:
    """Root-sum-of-squares of the coil images of centred k-space (..., coils, H, W), with NumPy's FFT."""
    images = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return np.sqrt((np.abs(images) ** 2).sum(-3))


def test_native_grid_keeps_every_measured_sample(tmp_path):
    import h5py

    path = tmp_path / "wide.h5"
    write_fastmri(path, slices=2, coils=3, h=40, w=56)
    with h5py.File(path) as f:
        kspace = f["kspace"][()]
    mask = torch.zeros(40, 56)
    mask[:, ::3] = 1
    data = read_kspace(path, None, make_mask=lambda grid: mask[: grid[0], : grid[1]])
    assert data.kspace.shape == (2, 3, 40, 56) and data.mask.shape == (40, 56)
    assert not any("low-pass" in note or "readout" in note for note in data.notes)
    np.testing.assert_allclose(data.kspace.numpy() * data.scale, kspace * mask.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.reference[:, 0].numpy() * data.scale, _rss_numpy(kspace), rtol=1e-4, atol=1e-5)


def test_native_grid_of_oversampled_readout_is_the_exact_central_crop(tmp_path):
    path = tmp_path / "tall.h5"
    images = write_fastmri(path, slices=1, coils=1, h=96, w=40, multicoil=False)
    data = read_kspace(path, None, make_mask=torch.ones)
    assert data.kspace.shape == (1, 1, 40, 40)
    np.testing.assert_allclose(data.reference[0, 0].numpy() * data.scale, images[0, 28:68], atol=1e-4)


def test_npy_kspace_on_its_own_grid(tmp_path):
    k = np.fft.fftshift(np.fft.fft2(np.random.default_rng(1).random((20, 36)), norm="ortho")).astype(np.complex64)
    path = tmp_path / "k.npy"
    np.save(path, k)
    y, operator, scale = kspace_on_grid(path, None, None)
    assert y.shape == (1, 1, 20, 36) and operator.image_shape[-2:] == (20, 36)
    torch.testing.assert_close(y[0, 0] * scale, torch.from_numpy(k))

"""Operators against external references: NumPy FFT, skimage radon/iradon, sigpy; mask helpers."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from scoremed.operators import (CT, MRI, MultiCoilMRI, box_mask, cartesian_mask, estimate_sensitivities,
                                full_view_angles, half_mask, poisson_mask, random_pixel_mask, rss,
                                sense_combine, sparse_view_angles)


@pytest.fixture(scope="module")
def phantom64() -> np.ndarray:
    return resize(shepp_logan_phantom(), (64, 64), anti_aliasing=True)


def _psnr(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(ref.max() ** 2 / np.mean((x - ref) ** 2)))


def _skimage_sinogram(image: np.ndarray, angles: torch.Tensor) -> np.ndarray:
    """skimage sinogram as (n_views, n_det) for angles in radians."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return radon(image, np.rad2deg(angles.numpy()), circle=True).T


@pytest.fixture(scope="module")
def ct_full64() -> CT:
    return CT(64, full_view_angles(180)).double()


def _fft2c_numpy(x: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def test_mri_forward_matches_numpy_fft():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 32, 24)) + 1j * rng.standard_normal((2, 1, 32, 24))
    mask = cartesian_mask((32, 24), 3, seed=1)
    y = MRI(mask, complex_images=True)(torch.from_numpy(x))
    assert y.dtype == torch.complex128
    np.testing.assert_allclose(y.numpy(), _fft2c_numpy(x) * mask.numpy(), atol=1e-12)
    y32 = MRI(mask)(torch.from_numpy(x.real).float())
    assert y32.dtype == torch.complex64
    np.testing.assert_allclose(y32.numpy(), _fft2c_numpy(x.real) * mask.numpy(), atol=1e-5)


@pytest.mark.parametrize("angles", [full_view_angles(180), sparse_view_angles(23)], ids=["full", "sparse"])
def test_ct_forward_matches_skimage_radon(phantom64, angles):
    op = CT(64, angles).double()
    ours = op(torch.from_numpy(phantom64)[None, None])[0, 0].numpy()
    ref = _skimage_sinogram(phantom64, angles)
    assert ours.shape == ref.shape == (len(angles), 64)
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(ours, ref)]
    assert min(corr) > 0.999
    scale = float((ours * ref).sum() / (ref * ref).sum())
    assert abs(scale - 1) < 0.02
    np.testing.assert_allclose(ours.sum(axis=1), phantom64.sum(), rtol=0.01)  # line integrals in pixel units


@pytest.mark.parametrize("n", [15, 16])
def test_ct_rotation_centre_is_pixel_n_over_2(n):
    image = torch.zeros(1, 1, n, n, dtype=torch.float64)
    image[..., n // 2, n // 2] = 1
    sino = CT(n, full_view_angles(12), n_detectors=n + 2, full_angles=full_view_angles(12)).double()(image)[0, 0]
    assert (sino.argmax(dim=1) == (n + 2) // 2).all()


@pytest.mark.parametrize("window, skimage_name", [("ramp", "ramp"), ("shepp-logan", "shepp-logan"),
                                                  ("cosine", "cosine"), ("hann", "hann")])
def test_ct_fbp_within_1db_of_skimage_iradon(phantom64, ct_full64, window, skimage_name):
    angles = full_view_angles(180)
    ref_sino = _skimage_sinogram(phantom64, angles)
    ref_psnr = _psnr(iradon(ref_sino.T, np.rad2deg(angles.numpy()), filter_name=skimage_name), phantom64)
    same_data = ct_full64.pseudo_inverse(torch.from_numpy(ref_sino.copy())[None, None], window=window)[0, 0].numpy()
    assert _psnr(same_data, phantom64) > ref_psnr - 1
    ours = ct_full64.pseudo_inverse(ct_full64(torch.from_numpy(phantom64)[None, None]), window=window)
    assert _psnr(ours[0, 0].numpy(), phantom64) > ref_psnr - 1


def test_ct_inverse_transform_and_sparse_view_fbp(phantom64):
    angles = sparse_view_angles(30)
    op = CT(64, angles).double()
    x = torch.from_numpy(phantom64)[None, None]
    full_ref = iradon(_skimage_sinogram(phantom64, full_view_angles(180)).T, np.rad2deg(full_view_angles(180).numpy()))
    assert _psnr(op.inverse_transform(op.transform(x))[0, 0].numpy(), phantom64) > _psnr(full_ref, phantom64) - 1
    sparse_ref = iradon(_skimage_sinogram(phantom64, angles).T, np.rad2deg(angles.numpy()))
    assert _psnr(op.pseudo_inverse(op(x))[0, 0].numpy(), phantom64) > _psnr(sparse_ref, phantom64) - 1
    torch.testing.assert_close(op.inverse_transform(op.embed(op(x))) * 180 / 30, op.pseudo_inverse(op(x)))


def test_ct_views_in_any_order():
    angles = sparse_view_angles(5, 20)
    ordered = CT(16, angles, full_angles=full_view_angles(20)).double()
    shuffled = CT(16, angles[[3, 0, 4, 2, 1]], full_angles=full_view_angles(20)).double()
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(shuffled(x), ordered(x)[:, :, [3, 0, 4, 2, 1]])
    torch.testing.assert_close(shuffled.embed(shuffled(x)), ordered.embed(ordered(x)))
    torch.testing.assert_close(shuffled.embed(shuffled(x)), shuffled.mask * shuffled.transform(x))


def test_sparse_view_angles_pick_from_full_set():
    full = full_view_angles(180)
    torch.testing.assert_close(full, torch.linspace(0, np.pi, 181, dtype=torch.float64)[:-1])
    picked = sparse_view_angles(23)
    assert len(picked) == 23 and all(bool((full == a).any()) for a in picked)
    torch.testing.assert_close(sparse_view_angles(180), full)
    assert CT(32, picked).mask.sum() == 23


@pytest.mark.parametrize("shape, accel, kind", [((64, 64), 4, "random"), ((32, 320), 8, "equispaced"),
                                                ((16, 100), 3, "random"), ((8, 64), 1, "equispaced")])
def test_cartesian_mask_acceleration_and_centre(shape, accel, kind):
    mask = cartesian_mask(shape, accel, center_fraction=0.08, kind=kind, seed=3)
    h, w = shape
    assert mask.shape == shape and mask.dtype == torch.float32
    assert (mask == mask[:1]).all()  # whole phase-encode lines
    assert int(mask[0].sum()) == round(w / accel)
    n_center = round(w * 0.08)
    assert mask[0, w // 2 - n_center // 2: w // 2 - n_center // 2 + n_center].all() and mask[0, w // 2] == 1
    torch.testing.assert_close(cartesian_mask(shape, accel, kind=kind, seed=3), mask)


def test_poisson_mask():
    mask = poisson_mask((64, 64), 4, calib=16, seed=0)
    assert mask.shape == (64, 64) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert abs(mask.numel() / mask.sum() - 4) < 0.2
    assert mask[24:40, 24:40].all()


def test_inpainting_masks():
    box = box_mask((3, 40, 60), box_fraction=0.25)
    assert box.shape == (3, 40, 60) and box[:, 20, 30].eq(0).all() and box[:, 0, 0].eq(1).all()
    assert abs(1 - box.mean() - 0.25) < 0.01
    rand = random_pixel_mask((2, 10, 10), missing_fraction=0.7, seed=0)
    assert int((rand[0] == 0).sum()) == 70 and torch.equal(rand[0], rand[1])
    torch.testing.assert_close(random_pixel_mask((10, 10), seed=5), random_pixel_mask((10, 10), seed=5))
    assert half_mask((4, 6))[:, 3:].eq(0).all() and half_mask((4, 6))[:, :3].eq(1).all()
    assert half_mask((5, 6), side="top")[:3].eq(0).all() and half_mask((5, 6), side="top")[3:].eq(1).all()


def test_espirit_maps_reproduce_coil_images(phantom64):
    import sigpy.mri

    x = torch.from_numpy(phantom64)[None, None]
    true_maps = torch.from_numpy(sigpy.mri.birdcage_maps((8, 64, 64)))
    coil_images = true_maps * x
    full = MultiCoilMRI(torch.ones(64, 64), true_maps, complex_images=True).double()
    kspace = full(x)
    maps = estimate_sensitivities(kspace[0], calib_width=24)
    assert maps.shape == (8, 64, 64) and maps.dtype == torch.complex64
    combined = sense_combine(coil_images.to(torch.complex64), maps)
    support = (x > 0.05).expand_as(coil_images)
    err = (maps * combined - coil_images)[support].norm() / coil_images[support].norm()
    assert err < 0.02
    torch.testing.assert_close(rss(coil_images), x * rss(true_maps[None]))
    # SENSE with the estimated maps: pseudo-inverse of fully sampled data gives the combined image
    op = MultiCoilMRI(torch.ones(64, 64), maps, complex_images=True)
    torch.testing.assert_close(op.pseudo_inverse(kspace.to(torch.complex64)), combined, atol=1e-4, rtol=1e-4)

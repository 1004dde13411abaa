"""CT at any geometry: skimage radon/iradon view by view, analytic line integrals, the decomposable subset path."""
from __future__ import annotations

import copy
import math
import time
import warnings

import numpy as np
import pytest
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from scoremed.errors import InputError
from scoremed.operators import CT, DecomposableOperator, FanBeamCT, SparseViewCT, full_view_angles, sparse_view_angles
from operator_cases import random_angles


@pytest.fixture(scope="module", params=[64, 65], ids=["even", "odd"])
def phantom(request) -> np.ndarray:
    return resize(shepp_logan_phantom(), (request.param, request.param), anti_aliasing=True)


def _psnr(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(ref.max() ** 2 / np.mean((x - ref) ** 2)))


def _skimage(fn, *args, **kwargs) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


ANGLE_SETS = {
    "23-even-off-grid": torch.linspace(0, math.pi, 24, dtype=torch.float64)[:-1],
    "40-random-full-turn": random_angles(40, seed=3),  # unsorted, in [0, 2 pi)
    "7-descending": torch.linspace(2.9, 0.2, 7, dtype=torch.float64),
}


@pytest.mark.parametrize("circle", [True, False], ids=["circle", "square"])
@pytest.mark.parametrize("angles", ANGLE_SETS.values(), ids=ANGLE_SETS.keys())
def test_any_angles_match_skimage_radon_view_by_view(phantom, angles, circle):
    n = phantom.shape[0]
    op = CT(n, angles, circle=circle).double()
    assert type(op) is CT and not isinstance(op, DecomposableOperator)
    ours = op(torch.from_numpy(phantom)[None, None])[0, 0].numpy()
    ref = _skimage(radon, phantom, np.rad2deg(angles.numpy()), circle=circle).T
    assert ours.shape == ref.shape == (len(angles), n if circle else math.ceil(math.sqrt(2) * n))
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(ours, ref)]
    assert min(corr) > 0.999
    np.testing.assert_allclose(ours.sum(axis=1), ref.sum(axis=1), rtol=0.01)  # line integrals in pixel units


@pytest.mark.parametrize("window", ["ramp", "shepp-logan", "cosine", "hamming", "hann"])
def test_fbp_at_any_angles_matches_skimage_iradon(phantom, window):
    angles = random_angles(60, seed=1, high=math.pi)
    op = CT(phantom.shape[0], angles).double()
    ref_sino = _skimage(radon, phantom, np.rad2deg(angles.numpy()), circle=True)
    ref = _skimage(iradon, ref_sino, np.rad2deg(angles.numpy()), filter_name=window)
    same_data = op.pseudo_inverse(torch.from_numpy(ref_sino.T.copy())[None, None], window=window)[0, 0].numpy()
    assert _psnr(same_data, ref) > 40  # the same reconstruction as iradon, to within 1 % of its range
    ours = op.pseudo_inverse(op(torch.from_numpy(phantom)[None, None]), window=window)[0, 0].numpy()
    assert _psnr(ours, phantom) > _psnr(ref, phantom) - 0.2


@pytest.mark.parametrize("spacing, centre_bin, n_det", [(0.5, 20.5, 41), (1.7, 7.0, 13), (1.0, 14.25, 30)])
def test_detector_spacing_and_centre_give_analytic_line_integrals(spacing, centre_bin, n_det):
    """A Gaussian blob's line integral is sqrt(2 pi) sigma exp(-d^2 / (2 sigma^2)), d its distance to the ray
    (half a bin of centre error would drop the correlation to 0.986)."""
    n, (cx, cy), sigma = 24, (14.3, 9.6), 2.5
    r = torch.arange(n, dtype=torch.float64)
    blob = torch.exp(-((r[None, :] - cx) ** 2 + (r[:, None] - cy) ** 2) / (2 * sigma ** 2))
    angles = random_angles(11, seed=5)
    op = CT(n, angles, n_detectors=n_det, detector_spacing=spacing, detector_center=centre_bin,
            circle=False).double()
    ours = op(blob[None, None])[0, 0]
    # the ray of bin d at angle t: normal (cos t, -sin t), offset s = (d - centre_bin) spacing from the centre n // 2
    s = (torch.arange(n_det, dtype=torch.float64) - centre_bin) * spacing
    dist = (cx - n // 2) * torch.cos(angles)[:, None] - (cy - n // 2) * torch.sin(angles)[:, None] - s
    exact = math.sqrt(2 * math.pi) * sigma * torch.exp(-dist ** 2 / (2 * sigma ** 2))
    assert float(torch.corrcoef(torch.stack([ours.flatten(), exact.flatten()]))[0, 1]) > 0.9999
    assert float((ours - exact).abs().max()) < 0.03 * float(exact.max())


def _blob(n: int, cx: float, cy: float, sigma: float) -> torch.Tensor:
    r = torch.arange(n, dtype=torch.float64)
    return torch.exp(-((r[None, :] - cx) ** 2 + (r[:, None] - cy) ** 2) / (2 * sigma ** 2))


@pytest.mark.parametrize("detector", ["flat", "curved"])
def test_fan_beam_line_integrals_are_analytic(detector):
    """Every fan ray from the source at c - R u through its bin: the blob's integral depends on its distance."""
    n, (cx, cy), sigma, (r, d) = 32, (18.3, 12.6), 2.5, (50.0, 30.0)
    angles = random_angles(9, seed=1)
    op = FanBeamCT(n, angles, r, d, detector=detector, detector_spacing=0.8, circle=False).double()
    ours = op(_blob(n, cx, cy, sigma)[None, None])[0, 0]
    beta, c = angles[:, None], n // 2
    source_x, source_y = c - r * torch.sin(beta), c - r * torch.cos(beta)
    bins = torch.arange(op.n_detectors, dtype=torch.float64) - op.n_detectors // 2
    if detector == "flat":   # towards c + D u + s e, e = (cos, -sin)
        s = bins * 0.8
        to_x, to_y = c + d * torch.sin(beta) + s * torch.cos(beta), c + d * torch.cos(beta) - s * torch.sin(beta)
    else:                    # on the arc of radius R + D around the source, fan angle gamma
        gamma = bins * 0.8 / (r + d)
        to_x = source_x + (r + d) * torch.sin(beta + gamma)
        to_y = source_y + (r + d) * torch.cos(beta + gamma)
    ux, uy = to_x - source_x, to_y - source_y
    dist = ((cx - source_x) * uy - (cy - source_y) * ux).abs() / torch.sqrt(ux ** 2 + uy ** 2)
    exact = math.sqrt(2 * math.pi) * sigma * torch.exp(-dist ** 2 / (2 * sigma ** 2))
    assert float(torch.corrcoef(torch.stack([ours.flatten(), exact.flatten()]))[0, 1]) > 0.9999
    assert float((ours - exact).abs().max()) < 0.03 * float(exact.max())


@pytest.mark.parametrize("detector", ["flat", "curved"])
def test_fan_beam_fbp_reconstructs_a_full_turn(detector):
    n = 48
    phantom = torch.from_numpy(resize(shepp_logan_phantom(), (n, n), anti_aliasing=True))[None, None]
    parallel = CT(n, torch.arange(180, dtype=torch.float64) * (math.pi / 180), cache_bytes=0).double()
    reference = _psnr(parallel.pseudo_inverse(parallel(phantom))[0, 0].numpy(), phantom[0, 0].numpy())
    fan = FanBeamCT(n, torch.arange(360, dtype=torch.float64) * (2 * math.pi / 360), 75.0, 45.0,
                    detector=detector, cache_bytes=0).double()  # one call each: matrix-free is quicker
    image = fan.pseudo_inverse(fan(phantom))[0, 0].numpy()
    assert _psnr(image, phantom[0, 0].numpy()) > reference - 1  # at least parallel-beam FBP quality
    assert abs(image.mean() / float(phantom.mean()) - 1) < 0.01  # the weights keep the scale


@pytest.mark.parametrize("n", [15, 16])
def test_rotation_centre_is_pixel_n_over_2_at_any_angle(n):
    image = torch.zeros(1, 1, n, n, dtype=torch.float64)
    image[..., n // 2, n // 2] = 1
    sino = CT(n, random_angles(9, seed=2), n_detectors=n + 2).double()(image)[0, 0]
    assert (sino.argmax(dim=1) == (n + 2) // 2).all()


def test_angle_subsets_of_a_full_grid_are_decomposable():
    on_grid = CT(16, sparse_view_angles(10))
    assert type(on_grid) is SparseViewCT and isinstance(on_grid, CT) and on_grid.mask.sum() == 10
    custom = CT(16, torch.tensor([0.0, math.pi / 3]), full_angles=full_view_angles(6))
    assert type(custom) is SparseViewCT and custom.full_angles.shape == (6,)
    off_grid = CT(16, torch.tensor([0.0, 0.1234]))
    assert type(off_grid) is CT and not hasattr(off_grid, "embed")
    assert type(copy.deepcopy(on_grid)) is SparseViewCT and type(copy.deepcopy(off_grid)) is CT
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    general = CT(16, on_grid.angles.double()[[3, 0, 1]] + 1e-4).double()  # near the grid, but off it
    assert type(general) is CT
    torch.testing.assert_close(general(x), on_grid.double()(x)[:, :, [3, 0, 1]], atol=2e-3 * 16, rtol=1e-2)
    with pytest.raises(InputError, match="^angles: expected each angle to be one of full_angles"):
        SparseViewCT(16, [0.1234])


@pytest.mark.parametrize("angles", [random_angles(13, seed=4), sparse_view_angles(12)], ids=["any", "subset"])
def test_cached_matrices_and_the_matrix_free_path_agree(angles):
    cached, free = CT(24, angles).double(), CT(24, angles, cache_bytes=0).double()
    x = torch.rand(3, 1, 24, 24, dtype=torch.float64)
    y = cached(x)
    assert any(name.endswith("._A_val") for name, _ in cached.named_buffers())  # built on first use
    assert not any(name.endswith("._A_val") for name, _ in free.named_buffers())
    for a, b in [(y, free(x)), (cached.adjoint(y), free.adjoint(y)), (cached.pseudo_inverse(y), free.pseudo_inverse(y))]:
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()))
    if isinstance(cached, SparseViewCT):
        k = cached.transform(x)
        torch.testing.assert_close(k, free.transform(x), rtol=1e-5, atol=1e-5 * float(k.abs().max()))
    with pytest.raises(InputError, match="^cache_bytes: expected an int >= 0"):
        CT(24, angles, cache_bytes=-1)


def test_the_512_by_720_view_operator_is_cheap_to_build():
    """The matrix-free projector stores its angles and a disc mask, not a system matrix."""
    start = time.perf_counter()
    op = CT(512, random_angles(720, seed=0))
    assert time.perf_counter() - start < 1.0
    stored = sum(b.numel() * b.element_size() for b in op.buffers())
    assert stored < 2 * 2 ** 20  # bytes: 512^2 float32 disc + 720 angles

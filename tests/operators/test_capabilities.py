"""Operator capabilities: the defaults foreign operators get, each named operator's flags, CT's support
against a NumPy disc, and every closed-form ``prox_l2`` against a dense solve of
(A^H A + rho I) x = A^H y + rho v (rho = 0: the least-squares solution nearest v)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scoremed.errors import InputError
from scoremed.operators import (CT, MRI, DecomposableOperator, FanBeamCT, Grayscale, Inpainting, Mask, MultiCoilMRI,
                                as_operator, box_mask, cartesian_mask, full_view_angles, random_pixel_mask,
                                sparse_view_angles)
from scoremed.operators.primitives import fft2c, hermitian_flip
from scoremed.operators.testing import check_operator
from operator_cases import NAMED, Blur, StandInInpainting, gaussian_kernel, make, random_like_domain

#: the named operators with a closed-form prox_l2
PROX = {"inpaint-hw", "inpaint-chw", "grayscale", "mri", "mri-lines-complex"}


def _foreign(name: str):
    if name == "module":
        return as_operator(Blur(gaussian_kernel()), (1, 8, 8))
    if name == "callable":
        return as_operator(lambda x: 2 * x[..., ::2, :], (2, 8, 8))
    return as_operator(StandInInpainting(random_pixel_mask((8, 8), seed=1)))


@pytest.mark.parametrize("name", ["module", "callable", "deepinv"])
def test_foreign_operators_get_the_default_capabilities(name):
    op = _foreign(name)
    x = torch.randn(2, *op.image_shape)
    y = op(x)
    assert torch.equal(op.support(x), x)
    assert not (op.has_prox_l2 or op.decomposable or op.complex_images)
    with pytest.raises(NotImplementedError, match="has no closed-form prox_l2"):
        op.prox_l2(x, y, 1.0)
    expected = op.source.A_dagger(y) if name == "deepinv" else op.adjoint(y) / op.norm() ** 2
    torch.testing.assert_close(op.pseudo_inverse(y), expected)


@pytest.mark.parametrize("name", list(NAMED))
def test_each_named_operator_states_its_capabilities(name):
    op, x = make(name)
    assert op.has_prox_l2 == (name in PROX)
    assert op.decomposable == isinstance(op, DecomposableOperator)
    if isinstance(op, (MRI, MultiCoilMRI)):
        assert op.multicoil == isinstance(op, MultiCoilMRI)
    if not isinstance(op, CT):
        assert torch.equal(op.support(x), x)


def _numpy_disc(n: int) -> np.ndarray:
    r = np.arange(n) - n // 2
    return (r[:, None] ** 2 + r[None, :] ** 2 <= (n // 2) ** 2).astype(np.float32)


@pytest.mark.parametrize("build, n", [
    (lambda: CT(16, sparse_view_angles(6, 24), full_angles=full_view_angles(24)), 16),
    (lambda: CT(15, torch.rand(5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))), 15),
    (lambda: FanBeamCT(16, full_view_angles(8) * 2, 30.0, 14.0), 16),
])
def test_ct_support_is_the_disc_the_rays_cross(build, n):
    op = build()
    x = torch.rand(2, 1, n, n)
    disc = torch.from_numpy(_numpy_disc(n))
    torch.testing.assert_close(op.support(x), x * disc, rtol=0, atol=0)
    torch.testing.assert_close(op(op.support(x)), op(x), rtol=0, atol=0)
    for combined in (2 * op, op.H @ op):                        # composed operators keep the innermost support
        torch.testing.assert_close(combined.support(x), x * disc, rtol=0, atol=0)
    assert torch.equal(CT(n, sparse_view_angles(6), circle=False).support(x), x)


def _dense(op, shape, complex_images: bool) -> torch.Tensor:
    """The matrix of A on (real or complex) images of ``shape``; real images: real and imaginary rows stacked."""
    n = math.prod(shape)
    basis = torch.eye(n, dtype=torch.complex128 if complex_images else torch.float64).reshape(n, *shape)
    columns = op(basis).reshape(n, -1).T
    return torch.cat([columns.real, columns.imag]) if columns.is_complex() and not complex_images else columns


def _flat(t: torch.Tensor, complex_images: bool) -> torch.Tensor:
    t = t.reshape(-1)
    return torch.cat([t.real, t.imag]) if t.is_complex() and not complex_images else t


def _reference_prox(a: torch.Tensor, v: torch.Tensor, y: torch.Tensor, rho: float, complex_images: bool):
    """(A^H A + rho I)^{-1} (A^H y + rho v), or for rho = 0 v + pinv(A^H A) A^H (y - A v), with torch.linalg."""
    gram, aty = a.mH @ a, a.mH @ _flat(y, complex_images)
    v = v.reshape(-1)
    if rho == 0:
        return v + torch.linalg.pinv(gram, hermitian=True) @ (aty - gram @ v)
    return torch.linalg.solve(gram + rho * torch.eye(len(v), dtype=gram.dtype), aty + rho * v)


def _asymmetric_mask(h: int, w: int) -> torch.Tensor:
    mask = (torch.rand(h, w, generator=torch.Generator().manual_seed(h * w)) < 0.4).float()
    assert not torch.equal(hermitian_flip(mask), mask)          # M_s differs from M: the real case has teeth
    return mask


CASES = {
    "inpaint-hw": (lambda: Inpainting(random_pixel_mask((6, 5), seed=2)), (2, 6, 5), False),
    "inpaint-chw": (lambda: Inpainting(box_mask((3, 6, 6))), (3, 6, 6), False),
    "grayscale": (Grayscale, (3, 4, 5), False),
    "mask": (lambda: Mask(random_pixel_mask((5, 4), seed=3)), (1, 5, 4), False),
    "mri-even": (lambda: MRI(_asymmetric_mask(8, 8)), (1, 8, 8), False),
    "mri-odd": (lambda: MRI(_asymmetric_mask(7, 9)), (2, 7, 9), False),
    "mri-lines": (lambda: MRI(cartesian_mask((8, 6), 2, seed=1)[:1]), (1, 8, 6), False),
    "mri-complex": (lambda: MRI(_asymmetric_mask(6, 8), complex_images=True), (1, 6, 8), True),
    "mri-complex-op-real-v": (lambda: MRI(_asymmetric_mask(6, 7), complex_images=True), (1, 6, 7), False),
}


@pytest.mark.parametrize("rho", [0.0, 0.3, 5.0])
@pytest.mark.parametrize("name", list(CASES))
def test_prox_l2_is_the_dense_least_squares_solution(name, rho):
    factory, shape, complex_images = CASES[name]
    op = factory().to(torch.float64)
    assert op.has_prox_l2
    v = random_like_domain((1, *shape), complex_images, torch.float64, seed=1)
    y = random_like_domain(tuple(op(v).shape), op(v).is_complex(), torch.float64, seed=2)   # not in A's range
    x = op.prox_l2(v, y, rho)
    assert x.shape == v.shape and x.dtype == v.dtype
    reference = _reference_prox(_dense(op, shape, complex_images), v, y, rho, complex_images)
    torch.testing.assert_close(x.reshape(-1), reference, rtol=0, atol=1e-10)


def test_prox_l2_takes_one_weight_per_image_in_the_images_precision():
    op = MRI(_asymmetric_mask(8, 8))
    v, y = torch.randn(2, 1, 8, 8), op(torch.randn(2, 1, 8, 8))
    rho = torch.tensor([0.1, 2.0], dtype=torch.float64).reshape(2, 1, 1, 1)
    x = op.prox_l2(v, y, rho)
    assert x.dtype == torch.float32
    for i in range(2):
        torch.testing.assert_close(x[i:i + 1], op.prox_l2(v[i:i + 1], y[i:i + 1], float(rho[i])))


@pytest.mark.parametrize("rho", [-0.1, float("nan"), True, "1", torch.tensor([1 + 1j])])
def test_prox_l2_refuses_a_bad_weight(rho):
    op = Inpainting(box_mask((6, 6)))
    with pytest.raises(InputError, match="^rho: expected"):
        op.prox_l2(torch.rand(1, 1, 6, 6), torch.rand(1, 1, 6, 6), rho)


@pytest.mark.parametrize("h, w", [(8, 8), (7, 9), (6, 5)])
def test_hermitian_flip_pairs_the_conjugate_frequencies_of_real_images(h, w):
    k = fft2c(torch.randn(2, 1, h, w, dtype=torch.float64))
    torch.testing.assert_close(hermitian_flip(k).conj(), k, rtol=0, atol=1e-12)


class _WrongProx(Inpainting):
    def prox_l2(self, v, y, rho):
        return self._projection_prox(v, y, rho, 2.0)


class _WrongSupport(Inpainting):
    def support(self, x):
        return x * 0.5


def test_the_battery_checks_support_and_prox():
    figures = check_operator(Inpainting(box_mask((8, 8))), (1, 8, 8))
    assert figures["support"] == 0 and figures["prox"] < 1e-12
    assert "prox" not in check_operator(CT(8, sparse_view_angles(4)), (1, 8, 8))
    with pytest.raises(AssertionError, match="^prox: "):
        check_operator(_WrongProx(box_mask((8, 8))), (1, 8, 8))
    with pytest.raises(AssertionError, match="^support: "):
        check_operator(_WrongSupport(box_mask((8, 8))), (1, 8, 8))

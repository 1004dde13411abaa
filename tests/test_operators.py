"""Shared property battery run over every operator, plus bad-input tests."""
from __future__ import annotations

import math
import re

import pytest
import torch

from scoremed.errors import InputError
from scoremed.operators import (CT, MRI, DecomposableOperator, Grayscale, Inpainting, LinearOperator,
                                MultiCoilMRI, box_mask, cartesian_mask, estimate_sensitivities,
                                full_view_angles, half_mask, poisson_mask, random_pixel_mask,
                                sparse_view_angles)


def _maps(n_coils: int = 3, n: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n_coils, n, n, dtype=torch.complex64, generator=g)


# name -> (factory, image shape without batch, complex images)
CASES = {
    "inpaint-hw": (lambda: Inpainting(random_pixel_mask((16, 16), seed=0)), (2, 16, 16), False),
    "inpaint-chw": (lambda: Inpainting(box_mask((3, 16, 16))), (3, 16, 16), False),
    "grayscale": (Grayscale, (3, 16, 12), False),
    "mri": (lambda: MRI(cartesian_mask((16, 16), 4, seed=0)), (1, 16, 16), False),
    "mri-lines-complex": (lambda: MRI(cartesian_mask((16, 16), 4, seed=0)[:1], complex_images=True),
                          (2, 16, 16), True),
    "multicoil": (lambda: MultiCoilMRI(cartesian_mask((16, 16), 2, seed=0), _maps()), (1, 16, 16), False),
    "multicoil-complex": (lambda: MultiCoilMRI(cartesian_mask((16, 16), 2, seed=0), _maps(),
                                               complex_images=True), (1, 16, 16), True),
    "ct-sparse": (lambda: CT(16, sparse_view_angles(6, 24), full_angles=full_view_angles(24)), (1, 16, 16), False),
    "ct-full-odd": (lambda: CT(15, full_view_angles(12), n_detectors=19, full_angles=full_view_angles(12)),
                    (2, 15, 15), False),
}
NAMES = list(CASES)
DECOMPOSABLE = [n for n in NAMES if not n.startswith("multicoil")]
KINDS = {"inpaint", "colorize", "mri", "mri-multicoil", "ct"}


def _rand(shape, complex_: bool, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if complex_:
        return torch.randn(shape, dtype=torch.complex128 if dtype == torch.float64 else torch.complex64, generator=g)
    return torch.randn(shape, dtype=dtype, generator=g)


def _setup(name: str, dtype: torch.dtype = torch.float64, batch: int = 2):
    factory, shape, complex_ = CASES[name]
    op = factory().to(dtype)
    return op, _rand((batch, *shape), complex_, dtype)


def _inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Re<a, b>."""
    return (a.conj() * b).real.sum()


def _like(y: torch.Tensor, seed: int) -> torch.Tensor:
    return _rand(y.shape, y.is_complex(), y.real.dtype, seed)


@pytest.mark.parametrize("name", NAMES)
def test_protocol_attributes(name):
    op, _ = _setup(name)
    assert isinstance(op, LinearOperator) and isinstance(op, torch.nn.Module)
    assert op.kind in KINDS
    assert isinstance(op, DecomposableOperator) == (name in DECOMPOSABLE)


@pytest.mark.parametrize("name", NAMES)
def test_linearity(name):
    op, x1 = _setup(name)
    x2 = _like(x1, 1)
    a, b = (0.7 - 0.2j, -1.3 + 0.5j) if x1.is_complex() else (0.7, -1.3)
    torch.testing.assert_close(op(a * x1 + b * x2), a * op(x1) + b * op(x2))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-4), (torch.float32, 1e-3)], ids=["f64", "f32"])
@pytest.mark.parametrize("name", NAMES)
def test_adjointness(name, dtype, tol):
    op, x = _setup(name, dtype)
    ax = op(x)
    y = _like(ax, 2)
    err = (_inner(ax, y) - _inner(x, op.adjoint(y))).abs() / (ax.norm() * y.norm())
    assert err < tol


@pytest.mark.parametrize("name", NAMES)
def test_autograd_gradient_is_adjoint(name):
    op, x = _setup(name)
    x.requires_grad_(True)
    y = _like(op(x), 3)
    (grad,) = torch.autograd.grad(_inner(op(x), y), x)
    torch.testing.assert_close(grad, op.adjoint(y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name, dtype):
    op, x = _setup(name, dtype, batch=3)
    y = op(x)
    expected = tuple(x.shape[1 + i] if s is None else s for i, s in enumerate(op.measurement_shape))
    assert tuple(y.shape) == (3, *expected)
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    assert y.dtype == (complex_dtype if op.complex_measurement else dtype)
    image_dtype = x.dtype
    assert y.is_contiguous()
    for out in (op.adjoint(y), op.pseudo_inverse(y)):
        assert out.shape == x.shape and out.dtype == image_dtype and out.is_contiguous()
    shape = op.image_shape
    assert len(shape) == 3 and all(s is None or s == t for s, t in zip(shape, x.shape[1:]))


@pytest.mark.parametrize("name", NAMES)
def test_batch_consistency(name):
    op, x = _setup(name, batch=3)
    y = op(x)
    torch.testing.assert_close(torch.cat([op(x[i:i + 1]) for i in range(3)]), y)
    torch.testing.assert_close(torch.cat([op.adjoint(y[i:i + 1]) for i in range(3)]), op.adjoint(y))
    torch.testing.assert_close(torch.cat([op.pseudo_inverse(y[i:i + 1]) for i in range(3)]), op.pseudo_inverse(y))


@pytest.mark.parametrize("name", NAMES)
def test_to_moves_every_buffer(name):
    factory, shape, complex_ = CASES[name]
    op = factory()
    float_buffers = [n for n, b in op.named_buffers() if b.is_floating_point()]
    assert float_buffers and not any(b.is_complex() for b in op.buffers())  # complex would lose .imag
    op64 = factory().to(torch.float64)
    assert all(b.dtype == torch.float64 for n, b in op64.named_buffers() if n in float_buffers)
    x = _rand((1, *shape), complex_, torch.float32)
    y64 = op64(x.to(torch.complex128 if complex_ else torch.float64))
    assert y64.real.dtype == torch.float64
    torch.testing.assert_close(y64.to(op(x).dtype), op(x), rtol=1e-4, atol=1e-5)
    meta = factory().to("meta")
    assert all(b.device.type == "meta" for b in meta.buffers())


@pytest.mark.parametrize("name", DECOMPOSABLE)
def test_decomposition(name):
    op, x = _setup(name)
    torch.testing.assert_close(op.embed(op(x)), op.mask * op.transform(x))
    assert op.mask.dtype == torch.float64 and set(op.mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.broadcast_shapes(op.mask.shape, op.transform(x).shape) == op.transform(x).shape
    noise = torch.randn(x.shape, dtype=torch.float64)  # real image-space noise must be accepted
    assert op.transform(noise).shape == op.transform(x).shape
    if name.startswith("ct"):  # FBP accuracy: checked on a phantom in test_operators_reference.py
        assert op.inverse_transform(op.transform(x)).shape == x.shape
    else:
        # Grayscale's matrix buffer is created in float32, so T^T T = I to float32 precision
        tol = 1e-6 if name == "grayscale" else None
        torch.testing.assert_close(op.inverse_transform(op.transform(x)), x, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", NAMES)
def test_pseudo_inverse_rejects_non_finite(name):
    op, x = _setup(name)
    y = op(x).clone()
    y.view(-1)[3] = float("nan")  # outputs are contiguous
    with pytest.raises(InputError, match="^y: .*finite"):
        op.pseudo_inverse(y)
    with pytest.raises(InputError, match="^meas: .*finite"):
        op.check_measurement(y, name="meas")
    op.adjoint(y)  # forward/adjoint do no value checks (no host synchronisation)


def _shrink_fixed_dim(t: torch.Tensor, shape) -> torch.Tensor:
    """t with one entry less along the last dim that ``shape`` fixes."""
    dim = 1 + max(i for i, s in enumerate(shape) if s is not None)
    return t.narrow(dim, 0, t.shape[dim] - 1)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shapes_and_dtypes_raise(name):
    op, x = _setup(name)
    y = op(x)
    bad_x = _shrink_fixed_dim(x, op.image_shape)
    got = re.escape(str(tuple(bad_x.shape)))
    with pytest.raises(InputError, match=r"^x: expected .*image of shape \(B, .*got .*" + got):
        op(bad_x)
    with pytest.raises(InputError, match=r"^img: expected"):
        op.check_image(bad_x, name="img")
    with pytest.raises(InputError, match=r"^y: expected .*got"):
        op.adjoint(_shrink_fixed_dim(y, op.measurement_shape))
    wrong_domain = y.real if y.is_complex() else y.to(torch.complex128)
    with pytest.raises(InputError, match=r"^y: expected (complex|real)"):
        op.pseudo_inverse(wrong_domain)
    with pytest.raises(InputError, match=r"^x: expected a torch.Tensor"):
        op(x.tolist())
    if not x.is_complex():
        with pytest.raises(InputError, match=r"^x: expected real image"):
            op(x.to(torch.complex128))


def test_grayscale_transform_is_orthonormal_colour_transform():
    op = Grayscale().double()
    torch.testing.assert_close(op.matrix @ op.matrix.T, torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(op.matrix[0], torch.full((3,), 1 / math.sqrt(3), dtype=torch.float64))
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(op(x), x.mean(1, keepdim=True))
    torch.testing.assert_close(op.pseudo_inverse(op(x)), op(x).repeat(1, 3, 1, 1))
    torch.testing.assert_close(op.embed(op(x))[:, 0:1], math.sqrt(3) * op(x))


def test_inpainting_keeps_known_pixels_only():
    mask = box_mask((8, 8))
    op = Inpainting(mask.bool())
    x = torch.rand(2, 3, 8, 8)
    y = op(x)
    assert torch.equal(y[:, :, mask == 1], x[:, :, mask == 1]) and not y[:, :, mask == 0].any()
    torch.testing.assert_close(op.pseudo_inverse(y), y)
    assert op.image_shape == (None, 8, 8)


BAD_CONSTRUCTORS = [
    ("mask", lambda: Inpainting(torch.rand(8, 8))),
    ("mask", lambda: Inpainting(torch.ones(8))),
    ("mask", lambda: MRI(torch.ones(2, 8, 8))),
    ("mask", lambda: MRI([[1, 0]])),
    ("mask", lambda: MultiCoilMRI(torch.ones(8, 9), _maps(2, 8))),
    ("sensitivity_maps", lambda: MultiCoilMRI(torch.ones(8, 8), torch.ones(2, 8, 8))),
    ("image_size", lambda: CT(1, [0.0])),
    ("angles", lambda: CT(16, [0.1234])),
    ("angles", lambda: CT(16, [])),
    ("angles", lambda: CT(16, [0.0, 0.0])),
    ("full_angles", lambda: CT(16, [0.0], full_angles=[[0.0]])),
    ("n_detectors", lambda: CT(16, [0.0], n_detectors=0)),
    ("n_views", lambda: sparse_view_angles(0)),
    ("n_views", lambda: sparse_view_angles(200, 180)),
    ("accel", lambda: cartesian_mask((8, 8), 0.5)),
    ("kind", lambda: cartesian_mask((8, 8), 2, kind="radial")),
    ("shape", lambda: box_mask((8,))),
    ("missing_fraction", lambda: random_pixel_mask((8, 8), 1.5)),
    ("side", lambda: half_mask((8, 8), side="middle")),
    ("accel", lambda: poisson_mask((8, 8), 0.9)),
    ("calib", lambda: poisson_mask((8, 8), 2, calib=(9, 1))),
    ("kspace", lambda: estimate_sensitivities(torch.ones(2, 8, 8))),
    ("calib_width", lambda: estimate_sensitivities(torch.ones(2, 8, 8, dtype=torch.complex64), calib_width=24)),
]


@pytest.mark.parametrize("arg, build", BAD_CONSTRUCTORS, ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD_CONSTRUCTORS)])
def test_bad_constructor_arguments_raise(arg, build):
    with pytest.raises(InputError, match=f"^{arg}: expected .*got"):
        build()


def test_ct_window_and_mismatched_operator_inputs_raise():
    op = CT(16, sparse_view_angles(4, 8), full_angles=full_view_angles(8))
    y = op(torch.rand(1, 1, 16, 16))
    with pytest.raises(InputError, match="^window: expected .*got 'hamming'"):
        op.pseudo_inverse(y, window="hamming")
    with pytest.raises(InputError, match=r"^k: expected real full-view sinogram of shape \(B, C, 8, 16\)"):
        op.inverse_transform(y)
    expected = r"^y: expected complex k-space of shape \(B, C, 16, 16\), got float32 \(2, 1, 16, 16\)"
    with pytest.raises(InputError, match=expected):
        MRI(torch.ones(16, 16)).pseudo_inverse(torch.zeros(2, 1, 16, 16))

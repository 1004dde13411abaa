"""The property battery over every operator (one parametrised list), the battery's own failures, bad input."""
from __future__ import annotations

import math
import re

import pytest
import torch

from scoremed.errors import InputError
from scoremed.operators import (CT, MRI, DecomposableOperator, FanBeamCT, Grayscale, Inpainting, LinearOperator, MultiCoilMRI,
                                as_operator, box_mask, cartesian_mask, estimate_sensitivities, full_view_angles,
                                half_mask, poisson_mask, random_pixel_mask, sparse_view_angles)
from scoremed.operators.testing import check_operator
from operator_cases import CASES, DECOMPOSABLE, NAMED, Blur, gaussian_kernel, make, maps, random_like_domain

NAMES = list(CASES)
KINDS = {"inpaint", "colorize", "mri", "mri-multicoil", "ct", "ct-fan", ""}


def _like(y: torch.Tensor, seed: int) -> torch.Tensor:
    return random_like_domain(y.shape, y.is_complex(), y.real.dtype, seed)


@pytest.mark.parametrize("name", NAMES)
def test_battery_holds(name):
    factory, shape = CASES[name]
    figures = check_operator(factory(), shape)
    assert figures["adjointness"] < 1e-12 and figures["linearity"] < 1e-12  # float64: exact to rounding
    assert figures["norm_value"] > 0 and figures["dtype"] < 1e-5 and figures["device_checked"]


@pytest.mark.parametrize("name", NAMES)
def test_protocol_attributes(name):
    op, _ = make(name)
    assert isinstance(op, LinearOperator) and isinstance(op, torch.nn.Module)
    assert op.kind in KINDS and (op.kind != "") == (name in NAMED)
    assert isinstance(op, DecomposableOperator) == (name in DECOMPOSABLE) == op.decomposable


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name, dtype):
    op, x = make(name, dtype, batch=3)
    y = op(x)
    expected = tuple(x.shape[1 + i] if s is None else s for i, s in enumerate(op.measurement_shape))
    assert tuple(y.shape) == (3, *expected) and y.is_contiguous()
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    assert y.dtype == (complex_dtype if op.complex_measurement else dtype)
    for out in (op.adjoint(y), op.pseudo_inverse(y)):
        assert out.shape == x.shape and out.dtype == x.dtype and out.is_contiguous()
    assert len(op.image_shape) == 3 and all(s is None or s == t for s, t in zip(op.image_shape, x.shape[1:]))


@pytest.mark.parametrize("name", NAMED)
def test_to_moves_every_buffer(name):
    factory, shape = CASES[name]
    op = factory()
    float_buffers = [n for n, b in op.named_buffers() if b.is_floating_point()]
    assert float_buffers and not any(b.is_complex() for b in op.buffers())  # complex would lose .imag
    op64 = factory().to(torch.float64)
    assert all(b.dtype == torch.float64 for n, b in op64.named_buffers() if n in float_buffers)
    x = random_like_domain((1, *shape), op.complex_images, torch.float32)
    y64 = op64(x.to(torch.complex128 if op.complex_images else torch.float64))
    assert y64.real.dtype == torch.float64
    torch.testing.assert_close(y64.to(op(x).dtype), op(x), rtol=1e-4, atol=1e-5)
    meta = factory().to("meta")
    assert all(b.device.type == "meta" for b in meta.buffers())


@pytest.mark.parametrize("name", DECOMPOSABLE)
def test_decomposition(name):
    op, x = make(name)
    torch.testing.assert_close(op.embed(op(x)), op.mask * op.transform(x))
    assert op.mask.dtype == torch.float64 and set(op.mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.broadcast_shapes(op.mask.shape, op.transform(x).shape) == op.transform(x).shape
    noise = torch.randn(x.shape, dtype=torch.float64)  # real image-space noise must be accepted
    assert op.transform(noise).shape == op.transform(x).shape
    with pytest.raises(InputError, match=r"^x: expected"):                 # the transform checks x like forward
        op.transform(_shrink_fixed_dim(x, op.image_shape))
    if op.needs_full_precision:
        with pytest.raises(InputError, match=r"^x: expected float32/float64"):
            op.transform(x.to(torch.float16 if not x.is_complex() else torch.complex32))
    if name.startswith("ct"):  # FBP accuracy: checked on a phantom in test_operators_reference.py
        assert op.inverse_transform(op.transform(x)).shape == x.shape
    else:
        # Grayscale's matrix buffer is created in float32, so T^T T = I to float32 precision
        tol = 1e-6 if name == "grayscale" else None
        torch.testing.assert_close(op.inverse_transform(op.transform(x)), x, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", NAMES)
def test_pseudo_inverse_rejects_non_finite(name):
    op, x = make(name)
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
    op, x = make(name)
    y = op(x)
    bad_x = _shrink_fixed_dim(x, op.image_shape)
    got = re.escape(str(tuple(bad_x.shape)))
    with pytest.raises(InputError, match=r"^x: expected .*image of shape \(B, .*got .*" + got):
        op(bad_x)
    with pytest.raises(InputError, match=r"^img: expected"):
        op.check_image(bad_x, name="img")
    with pytest.raises(InputError, match=r"^y: expected .*got"):
        op.adjoint(_shrink_fixed_dim(y, op.measurement_shape))
    if op.measurement_domain != "real or complex":
        wrong_domain = y.real if y.is_complex() else y.to(torch.complex128)
        with pytest.raises(InputError, match=r"^y: expected (complex|real)"):
            op.pseudo_inverse(wrong_domain)
    with pytest.raises(InputError, match=r"^x: expected a torch.Tensor"):
        op(x.tolist())
    if op.image_domain == "real":
        with pytest.raises(InputError, match=r"^x: expected real image"):
            op(x.to(torch.complex128))


# --- the battery catches what it should ----------------------------------------------------
class WrongAdjoint(Blur):
    """A blur whose 'adjoint' is the identity."""

    def adjoint(self, y):
        return y


class AdjointOnly(torch.nn.Module):
    """A correct roll with a hand-written adjoint but a forward autograd cannot follow."""

    def forward(self, x):
        return torch.from_numpy(x.detach().cpu().numpy()).roll(1, -1).to(x.device)

    def adjoint(self, y):
        return y.roll(-1, -1)


GAP = r" = [0-9.e+-]+ > tolerance [0-9.e+-]+$"
FAILURES = [
    ("adjointness", lambda: WrongAdjoint(gaussian_kernel()), GAP),
    ("linearity", lambda: (lambda x: x.relu()), GAP),
    ("linearity", lambda: (lambda x: x + 1), GAP),
    ("batch", lambda: (lambda x: x.flip(0)), GAP),  # linear and self-adjoint, but mixes the images of a batch
    ("autograd", AdjointOnly, "forward is not differentiable"),
    ("dtype", lambda: (lambda x, k=gaussian_kernel()[None, None]: torch.nn.functional.conv2d(x, k, padding=2)),
     r"\.to\(torch.float64\) failed"),  # a closure over a float32 kernel cannot follow .to(float64)
]


@pytest.mark.parametrize("prop, build, detail", FAILURES, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(FAILURES)])
def test_battery_names_the_failed_property_and_its_gap(prop, build, detail):
    with pytest.raises(AssertionError, match=rf"^{prop}: .*{detail}"):
        check_operator(build(), (1, 8, 8))


def test_battery_reports_an_underestimated_norm():
    op = as_operator(Blur(gaussian_kernel(3, 0.5)), (1, 8, 8))
    op.__dict__["_norms"] = {(1, 8, 8): 0.5 * op.norm()}  # as if the power iteration had stopped too early
    with pytest.raises(AssertionError, match=r"^norm: .* = [0-9.e+-]+ > tolerance"):
        check_operator(op)


def test_battery_gap_is_the_measured_value():
    with pytest.raises(AssertionError) as info:
        check_operator(WrongAdjoint(gaussian_kernel()), (1, 8, 8))
    gap = float(re.search(r"= ([0-9.e+-]+) >", str(info.value)).group(1))
    assert 0.05 < gap < 2  # a blur against the identity: a large, finite gap


# --- constructors and bad input ---------------------------------------------------------------
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
    assert Inpainting(torch.ones(1, 8, 8)).image_shape == (1, 8, 8)


BAD_CONSTRUCTORS = [
    ("mask", lambda: Inpainting(torch.rand(8, 8))),
    ("mask", lambda: Inpainting(torch.ones(8))),
    ("mask", lambda: MRI(torch.ones(2, 8, 8))),
    ("mask", lambda: MRI([[1, 0]])),
    ("mask", lambda: MultiCoilMRI(torch.ones(8, 9), maps(2, 8))),
    ("sensitivity_maps", lambda: MultiCoilMRI(torch.ones(8, 8), torch.ones(2, 8, 8))),
    ("image_size", lambda: CT(1, [0.0])),
    ("angles", lambda: CT(16, [0.1234], full_angles=full_view_angles(180))),
    ("angles", lambda: CT(16, [])),
    ("angles", lambda: CT(16, [0.0, 0.0])),
    ("angles", lambda: CT(16, [0.0, 90.0, 179.0])),  # degrees
    ("angles", lambda: CT(16, "0 1 2")),
    ("full_angles", lambda: CT(16, [0.0], full_angles=[[0.0]])),
    ("n_detectors", lambda: CT(16, [0.0], n_detectors=0)),
    ("detector_spacing", lambda: CT(16, [0.3], detector_spacing=0.0)),
    ("detector_center", lambda: CT(16, [0.3], detector_center=float("nan"))),
    ("source_distance", lambda: FanBeamCT(16, [0.3], 7.0, 10.0)),  # inside the imaged disc
    ("detector", lambda: FanBeamCT(16, [0.3], 40.0, 10.0, detector="cylindrical")),
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
    with pytest.raises(InputError, match="^window: expected .*got 'lanczos'"):
        op.pseudo_inverse(y, window="lanczos")
    with pytest.raises(InputError, match=r"^k: expected real full-view sinogram of shape \(B, C, 8, 16\)"):
        op.inverse_transform(y)
    expected = r"^y: expected complex k-space of shape \(B, C, 16, 16\), got float32 \(2, 1, 16, 16\)"
    with pytest.raises(InputError, match=expected):
        MRI(torch.ones(16, 16)).pseudo_inverse(torch.zeros(2, 1, 16, 16))

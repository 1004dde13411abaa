"""Operator algebra against explicit matrices; MultiCoilMRI as a composition; the cached norm."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch

import scoremed.operators as ops
from scoremed.errors import InputError
from scoremed.operators import (CT, FFT, MRI, Compose, Inpainting, Mask, MultiCoilMRI, Multiply, Stack,
                                as_operator, box_mask, cartesian_mask, random_pixel_mask)
from operator_cases import Blur, gaussian_kernel, maps, random_angles

N = 6  # 6 x 6 images: 36 x 36 dense matrices


def dense(op, channels: int = 1) -> torch.Tensor:
    """The matrix of ``op`` on (channels, N, N) images, real images -> (possibly complex) measurements."""
    d = channels * N * N
    basis = torch.eye(d, dtype=torch.float64).reshape(d, channels, N, N)
    return op(basis).reshape(d, -1).T


@pytest.fixture(scope="module")
def parts():
    mri = MRI(cartesian_mask((N, N), 2, seed=0)).double()
    ct = CT(N, random_angles(4)).double()
    blur = as_operator(Blur(gaussian_kernel(3, 0.7)).double(), torch.zeros(1, 1, N, N, dtype=torch.float64))
    inpaint = Inpainting(random_pixel_mask((N, N), 0.4, seed=1)).double()
    return {"mri": mri, "ct": ct, "blur": blur, "inpaint": inpaint}


def test_composition_adjoint_scaling_and_sums_match_matrix_algebra(parts):
    mri, ct, blur, inpaint = parts["mri"], parts["ct"], parts["blur"], parts["inpaint"]
    m_mri, m_ct, m_blur, m_in = dense(mri), dense(ct), dense(blur), dense(inpaint)
    torch.testing.assert_close(dense(ct @ blur @ inpaint), m_ct @ m_blur @ m_in)
    torch.testing.assert_close(dense(mri @ blur), m_mri @ m_blur.to(m_mri.dtype))
    torch.testing.assert_close(dense(2.5 * blur - inpaint / 2), 2.5 * m_blur - 0.5 * m_in)
    torch.testing.assert_close(dense(-(0.5 - 2j) * mri), -(0.5 - 2j) * m_mri)
    # A^H as an operator on measurements: its matrix is the conjugate transpose (real images: real part)
    sino = ct.measurement_shape[1:]
    basis = torch.eye(4 * N, dtype=torch.float64).reshape(-1, 1, *sino)
    torch.testing.assert_close(ct.H(basis).reshape(4 * N, -1).T, m_ct.T)
    torch.testing.assert_close(dense(ct.H @ ct), m_ct.T @ m_ct)
    # (A B)^H = B^H A^H, checked on the matrices of the adjoint applied to a random measurement
    y = torch.randn(1, 1, *sino, dtype=torch.float64)
    torch.testing.assert_close((ct @ blur).adjoint(y).reshape(-1), (m_ct @ m_blur).T @ y.reshape(-1))


def test_stack_matches_stacked_matrices_and_splits_free_sizes(parts):
    ct, blur, inpaint = parts["ct"], parts["blur"], parts["inpaint"]
    stacked = Stack([blur, inpaint, blur @ inpaint], dim=1)
    assert stacked.measurement_shape == (3, N, N)
    m = dense(stacked).reshape(3, N * N, -1)  # rows grouped by channel
    for part, op in zip(m, (blur, inpaint, blur @ inpaint)):
        torch.testing.assert_close(part, dense(op))
    views = Stack([ct, ct @ blur], dim=2)
    assert views.measurement_shape == (None, 8, ct.n_detectors)
    torch.testing.assert_close(dense(views).reshape(2, 4, ct.n_detectors, -1)[1].reshape(-1, N * N),
                               dense(ct @ blur))
    free = Stack([inpaint, inpaint])  # channels free: y splits in two equal halves
    y = torch.randn(2, 4, N, N, dtype=torch.float64)
    torch.testing.assert_close(free.adjoint(y), inpaint.adjoint(y[:, :2]) + inpaint.adjoint(y[:, 2:]))


def test_multicoil_mri_is_the_stack_of_its_per_coil_compositions():
    mask, coil_maps = cartesian_mask((16, 16), 2, seed=0), maps(4, 16)
    op = MultiCoilMRI(mask, coil_maps).double()
    assert isinstance(op.op, Compose) and [type(p) for p in op.op.ops] == [Mask, FFT, Multiply]
    per_coil = Stack([Mask(mask) @ FFT() @ Multiply(m[None], (1, 16, 16)) for m in coil_maps]).double()
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(op(x), per_coil(x))
    y = op(torch.randn_like(x))
    torch.testing.assert_close(op.adjoint(y), per_coil.adjoint(y).real)


def test_shape_constraints_travel_through_compositions():
    mask = cartesian_mask((16, 12), 4, seed=0)
    assert (Mask(mask) @ FFT()).image_shape == (None, 16, 12)
    assert (Mask(mask[:1]) @ FFT()).image_shape == (None, None, 12)
    with pytest.raises(InputError, match=r"^operators \(MRI @ CT\): expected matching shapes"):
        MRI(mask) @ CT(8, random_angles(3))
    with pytest.raises(InputError, match="^operators: FFT gives complex measurements but .*takes real images"):
        CT(16, random_angles(3)) @ FFT()
    with pytest.raises(InputError, match="^scale: expected a real number"):
        (1 + 1j) * CT(8, random_angles(3))
    with pytest.raises(InputError, match="^operators: expected scoremed operators"):
        Compose(MRI(mask), lambda x: x)
    with pytest.raises(InputError, match="^operators: expected operators with the same measurement domain"):
        MRI(mask) + Inpainting(box_mask((16, 12)))


def test_adjoint_is_memoised_and_involutive(parts):
    ct = parts["ct"]
    assert ct.H is ct.H and ct.H.H is ct
    assert (2 * ct).H.H is not None and ct.H.image_shape == ct.measurement_shape


class CountingBlur(Blur):
    calls = 0

    def forward(self, x):
        CountingBlur.calls += 1
        return super().forward(x)


def test_norm_is_the_largest_singular_value_and_is_cached(parts):
    for name in ("ct", "blur", "mri"):
        op = parts[name]
        expected = float(torch.linalg.matrix_norm(dense(op), ord=2))
        assert abs(op.norm() - expected) < 1e-3 * expected, name
    counted = as_operator(CountingBlur(gaussian_kernel(3, 0.7)), (1, N, N))
    first = counted.norm()
    calls = CountingBlur.calls
    assert counted.norm() == first and CountingBlur.calls == calls  # second call: cached, no evaluation
    torch.testing.assert_close(torch.tensor(counted.H.norm()), torch.tensor(first))
    assert abs((3 * parts["ct"]).norm() - 3 * parts["ct"].norm()) < 1e-9


def test_fft_and_mask_multiply_are_written_once():
    """Only primitives.py multiplies by a mask or calls the 2D FFT; every other operator composes them."""
    folder = Path(inspect.getfile(ops)).parent
    fft, multiply = re.compile(r"torch\.fft\.i?fft2|torch\.fft\.i?fftn"), re.compile(r"\*\s*self\.mask|mask\.to\(")
    offenders = {f.name for f in folder.glob("*.py") if f.name != "primitives.py"
                 and (fft.search(f.read_text()) or multiply.search(f.read_text()))}
    assert not offenders

"""as_operator: a user's blur module and a deepinv-shaped physics as operators, through solve; bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import scoremed
from scoremed.errors import InputError
from scoremed.operators import (MRI, Inpainting, LinearOperator, WrappedOperator, as_operator, cartesian_mask,
                                random_pixel_mask)
from scoremed.operators.primitives import fft2c
from conftest import smooth_gaussian
from operator_cases import Blur, StandInInpainting, StandInMRI, gaussian_kernel

H = 8


class FFTBlur(LinearOperator):
    """The same circular blur as ``Blur`` as a scoremed operator: FFT filter, explicit adjoint (conjugate response)."""

    def __init__(self, kernel: torch.Tensor, n: int):
        super().__init__()
        padded = torch.zeros(n, n, dtype=torch.float64)
        kh, kw = kernel.shape
        padded[:kh, :kw] = kernel.double()
        padded = padded.roll((-(kh // 2), -(kw // 2)), dims=(0, 1))  # kernel centre at pixel (0, 0)
        self.register_buffer("response", torch.view_as_real(torch.fft.fft2(padded)).float())
        self.n = n

    image_shape = property(lambda self: (1, self.n, self.n))
    measurement_shape = property(lambda self: (1, self.n, self.n))

    def _filter(self, x, conj: bool):
        response = torch.view_as_complex(self.response.contiguous())
        response = response.to(torch.complex128 if x.dtype == torch.float64 else torch.complex64)
        return torch.fft.ifft2(torch.fft.fft2(x) * (response.conj() if conj else response)).real

    def _forward(self, x):
        return self._filter(x, False)

    def _adjoint(self, y):
        return self._filter(y, True)


def test_autograd_adjoint_of_a_blur_module_is_the_correlation():
    blur = as_operator(Blur(gaussian_kernel()).double(), torch.zeros(1, 1, 16, 16, dtype=torch.float64))
    assert isinstance(blur, WrappedOperator) and blur.image_shape == blur.measurement_shape == (1, 16, 16)
    y = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    k = np.zeros((16, 16))
    k[:5, :5] = gaussian_kernel().double().numpy()
    k = np.roll(k, (-2, -2), axis=(0, 1))
    reference = np.fft.ifft2(np.fft.fft2(y.numpy()) * np.conj(np.fft.fft2(k))).real  # correlation with the kernel
    np.testing.assert_allclose(blur.adjoint(y).numpy(), reference, atol=1e-6)
    torch.testing.assert_close(blur(y), FFTBlur(gaussian_kernel(), 16).double()(y))


def test_autograd_adjoint_of_a_complex_valued_callable():
    mask = cartesian_mask((H, H), 2, seed=0)
    wrapped = as_operator(lambda x: fft2c(x) * mask, (1, H, H))
    assert wrapped.complex_measurement and not wrapped.complex_images
    y = MRI(mask)(torch.randn(3, 1, H, H))
    torch.testing.assert_close(wrapped.adjoint(y), MRI(mask).adjoint(y))


def test_deepinv_standin_uses_A_not_the_noisy_forward():
    physics = StandInInpainting(random_pixel_mask((H, H), seed=0), sigma=0.5)
    op = as_operator(physics)  # image shape from deepinv's img_size
    assert op.image_shape == (1, H, H) and op.style == "deepinv"
    x = torch.rand(2, 1, H, H)
    torch.testing.assert_close(op(x), physics.A(x), rtol=0, atol=0)
    torch.testing.assert_close(op.pseudo_inverse(op(x)), physics.A_dagger(physics.A(x)), rtol=0, atol=0)
    mri = as_operator(StandInMRI(cartesian_mask((H, H), 2, seed=1)))
    assert mri.image_shape == (2, H, H) and not mri.complex_measurement  # deepinv's real (re, im) channels


def test_a_module_with_an_adjoint_method_keeps_it():
    class Rolled(torch.nn.Module):
        def forward(self, x):
            return x.roll(1, -1)

        def adjoint(self, y):
            return y.roll(-1, -1) * 0 + 7  # deliberately wrong: shows that this method, not autograd, is used

    assert float(as_operator(Rolled(), (1, 4, 4)).adjoint(torch.zeros(1, 1, 4, 4)).mean()) == 7
    explicit = as_operator(Rolled(), (1, 4, 4), adjoint=lambda y: y.roll(-1, -1))
    y = torch.randn(1, 1, 4, 4)
    torch.testing.assert_close(explicit.adjoint(y), y.roll(-1, -1))


def test_as_operator_returns_scoremed_operators_unchanged_and_moves_modules():
    mri = MRI(torch.ones(H, H))
    assert as_operator(mri) is mri and as_operator(mri, (3, 5, 5)) is mri
    blur = as_operator(Blur(gaussian_kernel()), (1, H, H)).to(torch.float64)
    assert blur.source.kernel.dtype == torch.float64 and blur(torch.rand(1, 1, H, H, dtype=torch.float64)).dtype \
        == torch.float64
    assert as_operator(Blur(gaussian_kernel()).double(), (1, H, H)).norm() > 0  # probed in the module's float64


BAD = [
    (lambda: as_operator(None), "^operator: expected a scoremed operator"),
    (lambda: as_operator(Blur(gaussian_kernel())), "^operator: cannot tell which images a Blur takes"),
    (lambda: as_operator(Blur(gaussian_kernel()), (1, 0, 8)), "^image_shape: expected the per-image shape"),
    (lambda: as_operator(Blur(gaussian_kernel()), (1, None, 8)), "^image_shape: expected"),
    (lambda: as_operator(lambda x: x.sum(), (1, H, H)), r"^operator: on an image float32 \(1, 1, 8, 8\) it returned"),
    (lambda: as_operator(lambda x: 1 / 0, (1, H, H)), "^operator: its forward failed on a probe image .*ZeroDivision"),
    (lambda: as_operator(lambda x: torch.from_numpy(x.numpy().copy()), (1, H, H)),
     "^operator: its adjoint failed .*give adjoint=... to as_operator"),
    (lambda: as_operator(Blur(gaussian_kernel()), (1, H, H), adjoint=3), "^adjoint: expected a callable"),
]


@pytest.mark.parametrize("build, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_foreign_operators_raise_input_error(build, message):
    with pytest.raises(InputError, match=message):
        build()


def test_a_cropping_callable_gets_the_zero_padding_adjoint_and_its_shapes_from_the_probe():
    crop = as_operator(lambda x: x[..., :3, 1:], (2, H, H))
    assert crop.measurement_shape == (2, 3, H - 1)
    y = torch.randn(4, 2, 3, H - 1)
    padded = torch.zeros(4, 2, H, H)
    padded[..., :3, 1:] = y
    torch.testing.assert_close(crop.adjoint(y), padded)
    with pytest.raises(InputError, match=r"^y: expected real measurement of shape \(B, 2, 3, 7\)"):
        crop.adjoint(torch.zeros(1, 2, 3, H))


# --- through solve -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gaussian():
    mean, cov = smooth_gaussian(H)
    prior = scoremed.gaussian_prior(scoremed.VESDE(sigma_max=5.0), mean, cov, (1, H, H))
    g = torch.Generator().manual_seed(0)
    x = (mean + torch.linalg.cholesky(cov) @ torch.randn(H * H, generator=g, dtype=torch.float64))
    return prior, mean.reshape(1, 1, H, H).float(), x.reshape(1, 1, H, H).float()


def _residual(op, x, y) -> float:
    return float((op(x) - y).norm() / y.norm())


@pytest.mark.parametrize("method", ["consistency", "dps"])
def test_a_users_blur_module_reconstructs_through_solve(gaussian, method):
    prior, mean, x = gaussian
    module, explicit = Blur(gaussian_kernel(3, 0.8)), FFTBlur(gaussian_kernel(3, 0.8), H)
    y = explicit(x)
    options = {"prior": prior, "method": method, "steps": 40, "seed": 0, "progress": False}
    x_module = scoremed.solve(y, module, **options)  # a plain nn.Module: wrapped, adjoint by autograd
    x_explicit = scoremed.solve(y, explicit, **options)
    torch.testing.assert_close(x_module, x_explicit, atol=2e-3, rtol=0)
    assert _residual(explicit, x_module, y) < 0.7 * _residual(explicit, mean, y)  # the measurement is used


def test_a_deepinv_physics_reconstructs_like_the_scoremed_operator(gaussian):
    prior, mean, x = gaussian
    mask = random_pixel_mask((H, H), 0.5, seed=2)
    physics, ours = StandInInpainting(mask), Inpainting(mask)
    y = ours(x)
    options = {"prior": prior, "steps": 30, "seed": 0, "progress": False}
    torch.testing.assert_close(scoremed.solve(y, physics, **options), scoremed.solve(y, ours, **options))
    samples = scoremed.sample_posterior(y, physics, n=2, **options)
    assert samples.shape == (2, 1, 1, H, H) and _residual(ours, samples.mean(0), y) < 0.05


def test_solve_without_a_prior_asks_for_the_image_shape(gaussian):
    with pytest.raises(InputError, match="^operator: cannot tell which images a Blur takes"):
        scoremed.solve(torch.zeros(1, 1, H, H), Blur(gaussian_kernel()), progress=False)

"""method='dds': conjugate gradients against least squares, the exact posterior mean of the closed-form
Gaussian, every operator kind, no host synchronisation in the loop."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import scoremed
from scoremed.errors import InputError
from scoremed.operators import CT, MRI, Grayscale, Inpainting, MultiCoilMRI, cartesian_mask, random_pixel_mask
from scoremed.operators import sparse_view_angles
from scoremed.sampling import conjugate_gradient
from scoremed.sampling.cg import real_dot
from scoremed.settings import settings_for
from gaussian_cases import fourier_columns, gaussian, left_half, mc_mean_error, posterior_case


def batched_matrix_problem(m: int, d: int, complex_rows: bool = False, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(3, m, d, generator=g, dtype=torch.float64)
    if complex_rows:
        A = torch.complex(A, torch.randn(3, m, d, generator=g, dtype=torch.float64))
    x0 = torch.randn(3, d, generator=g, dtype=torch.float64)
    y = A @ torch.randn(3, d, 1, generator=g, dtype=torch.float64).to(A.dtype)

    def normal(x):  # Re(A^H A) x on real x, per example
        return (A.mH @ (A @ x.to(A.dtype).unsqueeze(-1))).squeeze(-1).real

    return A, x0, y.squeeze(-1), normal, (A.mH @ y).squeeze(-1).real


@pytest.mark.parametrize("m,d,complex_rows", [(12, 6, False), (4, 9, False), (5, 8, True)],
                         ids=["overdetermined", "underdetermined", "complex-k-space"])
def test_cg_converges_to_the_least_squares_solution_nearest_to_the_start(m, d, complex_rows):
    A, x0, y, normal, rhs = batched_matrix_problem(m, d, complex_rows)
    x = conjugate_gradient(normal, rhs, x0, iterations=2 * d)
    real_A = torch.cat([A.real, A.imag], 1) if complex_rows else A
    real_y = torch.cat([y.real, y.imag], 1) if complex_rows else y
    pinv = torch.linalg.pinv(real_A)
    expected = x0 + (pinv @ (real_y - (real_A @ x0.unsqueeze(-1)).squeeze(-1)).unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(x, expected, atol=1e-7, rtol=1e-7)


def test_cg_stops_moving_once_converged_and_solves_the_noisy_system():
    A, x0, y, normal, rhs = batched_matrix_problem(4, 9)
    early = conjugate_gradient(normal, rhs, x0, iterations=4)     # rank 4: exact after 4 iterations
    late = conjugate_gradient(normal, rhs, x0, iterations=40)     # and round-off does not blow up after
    torch.testing.assert_close(late, early, atol=1e-9, rtol=1e-9)
    gamma = 0.7
    x = conjugate_gradient(lambda v: v + gamma * normal(v), x0 + gamma * rhs, x0, iterations=9)
    eye = torch.eye(9, dtype=torch.float64)
    expected = torch.linalg.solve(eye + gamma * A.mT @ A, (x0 + gamma * rhs).unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(x, expected, atol=1e-9, rtol=1e-9)


def test_real_dot_is_the_real_inner_product():
    u, v = torch.randn(2, 3, 4, dtype=torch.complex128), torch.randn(2, 3, 4, dtype=torch.complex128)
    as_real = (torch.view_as_real(u) * torch.view_as_real(v)).flatten(1).sum(1)
    torch.testing.assert_close(real_dot(u, v), as_real)


@pytest.mark.parametrize("op_fn", [left_half, fourier_columns], ids=["inpainting", "fourier-mask"])
@pytest.mark.parametrize("sde", [scoremed.VESDE(), scoremed.VPSDE()], ids=["VE", "VP"])
def test_dds_converges_to_the_exact_posterior_mean(sde, op_fn):
    """scoremed.solve(..., method='dds'), eta = 0: first-order convergence to the closed-form posterior
    mean (measured, VE inpainting: 0.15 / 0.08 / 0.04 / 0.02 / 0.01 of the prior-mean error at 25 /
    50 / 100 / 200 / 400 steps)."""
    h, mean, cov, x, operator, y, post_mean, post_cov = posterior_case(16, op_fn)
    prior = scoremed.gaussian_prior(sde, mean, cov, (1, h, h))
    n = 500
    baseline = float((mean - post_mean).norm())
    errors = []
    for steps in (50, 200):
        samples = scoremed.sample_posterior(y, operator, n=n, prior=prior, method="dds", steps=steps, eta=0.0, seed=0,
                                            progress=False)
        errors.append(float((samples.reshape(n, -1).double().mean(0) - post_mean).norm()) / baseline)
    target = 0.03 + 3 * mc_mean_error(post_cov, n) / baseline
    assert errors[1] <= target and (errors[1] < 0.6 * errors[0] or errors[0] <= target), errors


class Blur(nn.Module):
    """A user operator given only as a forward module (adjoint by autograd)."""

    def forward(self, x):
        return nn.functional.avg_pool2d(x, 2)


def operator_cases(h: int):
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, h, h, dtype=torch.complex64, generator=g)
    maps = maps / maps.abs().pow(2).sum(0, keepdim=True).sqrt()
    return {
        "inpainting": (Inpainting(random_pixel_mask((h, h), missing_fraction=0.5, seed=1)), 1),
        "mri": (MRI(cartesian_mask((h, h), accel=2, center_fraction=0.25, seed=0)), 1),
        "multicoil-mri": (MultiCoilMRI(cartesian_mask((h, h), accel=2, center_fraction=0.25, seed=0), maps), 1),
        "ct": (CT(h, sparse_view_angles(6)), 1),
        "colorization": (Grayscale(), 3),
        "user-module": (Blur(), 1),
    }


@pytest.mark.parametrize("name", sorted(operator_cases(8)))
def test_dds_fits_the_measurement_with_every_operator(name):
    operator, channels = operator_cases(8)[name]
    d = channels * 64
    h, mean1, cov1 = gaussian(64)
    mean, cov = mean1.repeat(channels), torch.block_diag(*[cov1] * channels)
    prior = scoremed.gaussian_prior(scoremed.VESDE(sigma_max=5.0), mean, cov, (channels, 8, 8))
    g = torch.Generator().manual_seed(3)
    x = (mean + torch.linalg.cholesky(cov) @ torch.randn(d, generator=g, dtype=torch.float64)).float()
    x = x.reshape(1, channels, 8, 8)
    y = operator(x)
    x_hat = scoremed.solve(y, operator, prior=prior, method="dds", steps=20, cg_iterations=10, seed=0, progress=False)
    assert x_hat.shape == x.shape and torch.isfinite(x_hat).all()
    residual = float((operator(x_hat) - y).abs().norm() / y.abs().norm())
    prior_mean_residual = float((operator(mean.float().reshape(1, channels, 8, 8)) - y).abs().norm() / y.abs().norm())
    assert residual < 0.05 * prior_mean_residual + 1e-3, (residual, prior_mean_residual)


def test_dds_settings_come_from_the_prior_and_are_checked():
    h, mean, cov = gaussian(16)
    stored = scoremed.ScorePrior(scoremed.VESDE(), scoremed.gaussian_prior(scoremed.VESDE(), mean, cov, (1, h, h)).score,
                                 (1, h, h), solve_defaults={"dds": {"steps": 7, "cg_iterations": 2, "gamma": 0.5}})
    settings = settings_for("dds", stored)
    assert (settings.steps, settings.cg_iterations, settings.gamma, settings.eta, settings.predictor) == \
        (7, 2, 0.5, 0.85, "ddim")
    operator = left_half(h)
    y = operator(mean.float().reshape(1, 1, h, h))
    for bad, match in (({"predictor": "reverse_diffusion"}, "method 'dds' refines"), ({"eta": 1.5}, "eta"),
                       ({"cg_iterations": 0}, "cg_iterations"), ({"lam": 0.5}, "lam: not a setting of method 'dds'")):
        with pytest.raises(InputError, match=match):
            scoremed.solve(y, operator, prior=stored, method="dds", progress=False, **bad)


def test_no_host_synchronisation_inside_the_dds_loop(monkeypatch):
    """Host reads of tensor values do not grow with the number of steps or CG iterations."""
    h, mean, cov = gaussian(16)
    prior = scoremed.gaussian_prior(scoremed.VPSDE(), mean, cov, (1, h, h))
    operator = fourier_columns(h)
    y = operator(mean.float().reshape(1, 1, h, h))
    reads = {"n": 0}

    def counting(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            reads["n"] += 1
            return original(self, *args, **kwargs)
        return wrapper

    counts = {}
    for name in ("item", "__bool__", "__int__", "__float__", "tolist", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    for steps, iterations in ((5, 2), (20, 8)):
        reads["n"] = 0
        scoremed.solve(y, operator, prior=prior, method="dds", steps=steps, cg_iterations=iterations, seed=0,
                       progress=False)
        counts[steps] = reads["n"]
    monkeypatch.undo()
    assert counts[5] == counts[20], counts
    assert math.isfinite(counts[5])

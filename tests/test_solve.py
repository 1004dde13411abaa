"""solve / sample_posterior: closed-form linear-Gaussian posteriors, data consistency, bad input."""
import pytest
import torch

import scoremed
from scoremed.errors import InputError
from scoremed.operators import CT, MRI, Grayscale, Inpainting, cartesian_mask, random_pixel_mask, sparse_view_angles
from conftest import smooth_gaussian

H = 8


def gaussian_case(sde):
    mean, cov = smooth_gaussian(H)
    g = torch.Generator().manual_seed(0)
    x = (mean + torch.linalg.cholesky(cov) @ torch.randn(H * H, generator=g, dtype=torch.float64))
    return scoremed.gaussian_prior(sde, mean, cov, (1, H, H)), mean, cov, x.reshape(1, 1, H, H).float()


def posterior_mean(operator, y, mean, cov):
    """E[x | A x = y] for x ~ N(mean, cov), with complex measurements split into real and imaginary parts."""
    basis = torch.eye(mean.numel(), dtype=torch.float64).reshape(-1, 1, H, H)
    A = operator(basis).reshape(mean.numel(), -1).T
    yy = y.reshape(-1).to(A.dtype)
    if A.is_complex():
        A, yy = torch.cat([A.real, A.imag]), torch.cat([yy.real, yy.imag])
    gain = cov @ A.T @ torch.linalg.pinv(A @ cov @ A.T, hermitian=True, rtol=1e-8)
    return mean + gain @ (yy.double() - A @ mean)


OPERATORS = {
    "inpainting": lambda: Inpainting(random_pixel_mask((H, H), missing_fraction=0.6, seed=1)),
    "mri": lambda: MRI(cartesian_mask((H, H), accel=2, center_fraction=0.25, seed=0)),
}


@pytest.mark.parametrize("method", ["consistency", "projection", "dps"])
@pytest.mark.parametrize("op_name", sorted(OPERATORS))
@pytest.mark.parametrize("sde", [scoremed.VESDE(sigma_max=5.0), scoremed.VPSDE()], ids=["VE", "VP"])
def test_posterior_mean_of_a_linear_gaussian_problem(sde, op_name, method):
    prior, mean, cov, x = gaussian_case(sde)
    operator = OPERATORS[op_name]()
    y = operator(x)
    truth = posterior_mean(operator.double(), y, mean, cov)
    operator.float()
    samples = scoremed.sample_posterior(y, operator, n=200, prior=prior, method=method, steps=150, seed=0,
                                        progress=False)
    assert samples.shape == (200, 1, 1, H, H)
    estimate = samples.mean(0).reshape(-1).double()
    error, baseline = (estimate - truth).norm(), (mean - truth).norm()
    assert error < 0.3 * baseline


@pytest.mark.parametrize("method", ["consistency", "projection"])
def test_reconstruction_honours_the_measurement(method):
    prior, _, _, x = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    for operator in (Inpainting(random_pixel_mask((H, H), missing_fraction=0.5, seed=2)),
                     MRI(cartesian_mask((H, H), accel=2, center_fraction=0.25, kind="equispaced"))):
        y = operator(x)
        x_hat = scoremed.solve(y, operator, prior=prior, method=method, lam=1.0, steps=50, seed=0, progress=False)
        assert ((operator(x_hat) - y).abs().norm() / y.abs().norm()) < 0.02


def test_colorization_keeps_the_gray_image():
    mean = torch.full((3 * H * H,), 0.5, dtype=torch.float64)
    prior = scoremed.gaussian_prior(scoremed.VESDE(sigma_max=5.0), mean, 0.04 * torch.eye(3 * H * H, dtype=torch.float64),
                                    (3, H, H))
    x = torch.rand(2, 3, H, H)
    op = Grayscale()
    x_hat = scoremed.solve(op(x), op, prior=prior, steps=30, seed=0, progress=False)
    torch.testing.assert_close(op(x_hat), op(x), atol=1e-5, rtol=0)


def test_sparse_view_ct_uses_the_same_code_path():
    mean, cov = smooth_gaussian(16, length=3.0)
    prior = scoremed.gaussian_prior(scoremed.VESDE(sigma_max=5.0), mean, cov, (1, 16, 16))
    op = CT(16, sparse_view_angles(8, 180))
    # own generator: with the suite's global stream the drawn image depended on which tests ran before
    noise = torch.randn(256, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = (mean + torch.linalg.cholesky(cov) @ noise).float().reshape(1, 1, 16, 16)
    disc = (torch.linspace(-1, 1, 16)[:, None] ** 2 + torch.linspace(-1, 1, 16)[None] ** 2) < 0.8
    x = x * disc
    y = op(x)
    x_hat = scoremed.solve(y, op, prior=prior, steps=60, seed=0, progress=False)
    assert ((op(x_hat) - y).norm() / y.norm()) < ((op(op.pseudo_inverse(y)) - y).norm() / y.norm()) + 0.05
    # outside the disc the rays cross, the data say nothing: zero there, as in the direct reconstruction
    outside = op.support(torch.ones(1, 1, 16, 16))[0, 0] == 0
    assert outside.any() and (x_hat[..., outside] == 0).all() and (op.pseudo_inverse(y)[..., outside] == 0).all()
    assert (x_hat[..., ~outside] != 0).all()


def test_same_seed_same_result_and_samples_differ():
    prior, _, _, x = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    op = Inpainting(random_pixel_mask((H, H), missing_fraction=0.5, seed=2))
    a = scoremed.sample_posterior(op(x), op, n=3, prior=prior, steps=20, seed=4, progress=False)
    b = scoremed.sample_posterior(op(x), op, n=3, prior=prior, steps=20, seed=4, progress=False)
    torch.testing.assert_close(a, b)
    assert a.std(0).max() > 0  # a pixelwise std map is one call away


def test_bad_input_is_named():
    prior, _, _, x = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    op = MRI(cartesian_mask((H, H), accel=2, seed=0))
    y = op(x)
    with pytest.raises(InputError, match="y"):
        scoremed.solve(y.real, op, prior=prior, steps=5, progress=False)            # real where complex expected
    with pytest.raises(InputError, match="y"):
        scoremed.solve(y[..., :4], op, prior=prior, steps=5, progress=False)        # wrong shape
    with pytest.raises(InputError, match="y"):
        scoremed.solve(y * float("nan"), op, prior=prior, steps=5, progress=False)  # non-finite
    with pytest.raises(InputError, match="prior"):
        big = MRI(cartesian_mask((16, 16), accel=2, seed=0))
        scoremed.solve(big(torch.rand(1, 1, 16, 16)), big, prior=prior, steps=5, progress=False)
    with pytest.raises(InputError, match="method"):
        scoremed.solve(y, op, prior=prior, method="magic", progress=False)
    with pytest.raises(InputError, match="lam"):
        scoremed.solve(y, op, prior=prior, lam=2.0, progress=False)


def test_divergence_raises_with_the_step_number():
    prior, _, _, x = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    exploding = scoremed.ScorePrior(prior.sde, lambda x, t: x * float("inf"), prior.image_shape)
    op = Inpainting(random_pixel_mask((H, H), missing_fraction=0.5, seed=2))
    with pytest.raises(FloatingPointError, match="step 0"):
        scoremed.solve(op(x), op, prior=exploding, steps=5, progress=False)


def test_dps_step_does_not_depend_on_the_operator_scale():
    """zeta is per ||A||: measuring 10 A x instead of A x gives the same reconstruction."""
    prior, _, _, x = gaussian_case(scoremed.VPSDE())
    op = Inpainting(random_pixel_mask((H, H), missing_fraction=0.5, seed=2))
    big = 10.0 * op
    a = scoremed.sample_posterior(op(x), op, n=4, prior=prior, method="dps", steps=30, seed=0, progress=False)
    b = scoremed.sample_posterior(big(x), big, n=4, prior=prior, method="dps", steps=30, seed=0, progress=False)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_dps_divergence_stops_with_the_step_number():
    """A zeta far too large makes the estimate fit y worse than at the start: SamplingDiverged names the step."""
    mean, cov = smooth_gaussian(16, length=3.0)
    prior = scoremed.gaussian_prior(scoremed.VESDE(), mean, cov, (1, 16, 16))
    op = CT(16, sparse_view_angles(8, 180))
    x = (mean + torch.linalg.cholesky(cov) @ torch.randn(256, dtype=torch.float64)).float().reshape(1, 1, 16, 16)
    with pytest.raises(FloatingPointError, match=r"dps diverged: from step \d+ of 60 on") as info:
        scoremed.solve(op(x), op, prior=prior, method="dps", zeta=200.0, steps=60, seed=0, progress=False)
    assert 0 <= info.value.step < 60
    x_hat = scoremed.solve(op(x), op, prior=prior, method="dps", steps=60, seed=0, progress=False)   # default zeta
    assert ((op(x_hat) - op(x)).norm() / op(x).norm()) < 0.2


def test_method_none_is_the_method_the_prior_recommends():
    from scoremed.settings import default_method, settings_for

    mean, cov = torch.full((16,), 0.5, dtype=torch.float64), 0.05 * torch.eye(16, dtype=torch.float64)
    prior = scoremed.gaussian_prior(scoremed.VESDE(), mean, cov, image_shape=(1, 4, 4))
    assert default_method(prior) == "consistency" and settings_for(None, prior).method == "consistency"
    prior.metadata["default_method"] = "dds"
    assert settings_for(None, prior).method == "dds" and settings_for("dps", prior).method == "dps"
    prior.metadata["default_method"] = "magic"
    with pytest.raises(InputError, match="unknown method 'magic'"):
        settings_for(None, prior)

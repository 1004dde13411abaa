"""Likelihood through the probability-flow ODE against analytic Gaussian log-densities."""
import math

import pytest
import torch

import scoremed
from conftest import bits_per_dim, random_gaussian


def _data(mean, cov, n, seed=3):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(cov.shape[0], n, generator=g, dtype=torch.float64)
    return (mean[:, None] + torch.linalg.cholesky(cov) @ z).T


# VE's prior N(0, sigma_max^2) ignores the data mean, so VE uses zero-mean data to keep the
# prior mismatch far below the tolerance; VP and sub-VP forget the mean by t = T.
CASES = [(scoremed.VESDE(sigma_max=50.0), 0.0), (scoremed.VPSDE(), 1.0), (scoremed.subVPSDE(), 1.0)]


@pytest.mark.parametrize("sde,mean_scale", CASES, ids=lambda c: type(c).__name__ if not isinstance(c, float) else "")
def test_exact_trace_matches_analytic_density(sde, mean_scale):
    mean, cov = random_gaussian(4, seed=0, mean_scale=mean_scale)
    prior = scoremed.gaussian_prior(sde, mean, cov, (1, 2, 2))
    x = _data(mean, cov, 6)
    truth = bits_per_dim(torch.distributions.MultivariateNormal(mean, cov).log_prob(x), 4)
    bpd = scoremed.likelihood(x.reshape(6, 1, 2, 2), prior, exact_trace=True)
    assert bpd.shape == (6,)
    assert torch.all((bpd - truth).abs() < 0.01)


@pytest.mark.parametrize("estimator", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased(estimator):
    mean, cov = random_gaussian(4, seed=1)
    prior = scoremed.gaussian_prior(scoremed.VPSDE(), mean, cov, (1, 2, 2))
    x = _data(mean, cov, 1).reshape(1, 1, 2, 2).repeat(150, 1, 1, 1)
    truth = bits_per_dim(torch.distributions.MultivariateNormal(mean, cov).log_prob(x[:1].reshape(1, -1).double()), 4)
    estimates = scoremed.likelihood(x, prior, estimator=estimator, seed=0, rtol=1e-4, atol=1e-4)
    stderr = estimates.std() / math.sqrt(len(estimates))
    assert estimates.std() > 0  # really stochastic
    assert abs(estimates.mean() - truth) < 4 * stderr + 0.01


def test_centred_prior_accounts_for_the_rescaling_jacobian():
    mean, cov = random_gaussian(4, seed=2, mean_scale=0.2)
    sde = scoremed.VPSDE()
    plain = scoremed.gaussian_prior(sde, mean, cov, (1, 2, 2))
    # the same distribution seen in data space u = (x + 1) / 2
    centred = scoremed.ScorePrior(sde, plain.score_fn, (1, 2, 2), centered=True)
    x = _data(mean, cov, 3).reshape(3, 1, 2, 2)
    u = (x + 1) / 2
    expected = scoremed.likelihood(x, plain, exact_trace=True) - 1.0  # log2 |d x / d u| = 1 bit per dim
    torch.testing.assert_close(scoremed.likelihood(u, centred, exact_trace=True), expected, atol=1e-4, rtol=0)


def test_dequantization_adds_the_documented_offset():
    mean, cov = random_gaussian(4, seed=2, mean_scale=0.0)
    prior = scoremed.gaussian_prior(scoremed.VPSDE(), mean + 0.5, cov * 0.01, (1, 2, 2))
    x = torch.full((2, 1, 2, 2), 128 / 255, dtype=torch.float64)
    bpd = scoremed.likelihood(x, prior, exact_trace=True, dequantize_bits=8, seed=0)
    # y = (128 + u) / 256 is within [0.5, 0.504): its density is nearly the density at 0.5
    plain = scoremed.likelihood(torch.full_like(x, 0.502), prior, exact_trace=True)
    assert torch.allclose(bpd, plain + 8, atol=0.05)


def test_encode_decode_round_trip():
    mean, cov = random_gaussian(4, seed=4)
    prior = scoremed.gaussian_prior(scoremed.VESDE(sigma_max=20.0), mean, cov, (1, 2, 2))
    x = _data(mean, cov, 3).reshape(3, 1, 2, 2)
    z = scoremed.encode(x, prior)
    assert z.abs().max() > 3  # moved to the wide prior
    torch.testing.assert_close(scoremed.decode(z, prior), x, atol=2e-3, rtol=0)


def test_likelihood_rejects_bad_images():
    prior = scoremed.gaussian_prior(scoremed.VPSDE(), *random_gaussian(4), (1, 2, 2))
    with pytest.raises(scoremed.InputError, match="x: expected a tensor of shape"):
        scoremed.likelihood(torch.zeros(2, 1, 3, 3), prior)
    with pytest.raises(scoremed.InputError, match="NaN"):
        scoremed.likelihood(torch.full((1, 1, 2, 2), float("nan")), prior)

"""PC and probability-flow ODE samplers against closed-form Gaussian targets."""
import pytest
import torch

import scoremed
from scoremed.errors import InputError
from conftest import random_gaussian

SDES = [scoremed.VESDE(sigma_max=20.0), scoremed.VPSDE(), scoremed.subVPSDE()]


def _moments(samples):
    flat = samples.reshape(samples.shape[0], -1).double()
    return flat.mean(0), torch.cov(flat.T)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_the_ode_sampler_reproduces_gaussian_moments(sde):
    """The adaptive probability-flow ODE (the PC combinations: tests/sampling/test_closed_form.py)."""
    mean, cov = random_gaussian(4, seed=0)
    prior = scoremed.gaussian_prior(sde, mean, cov, (1, 2, 2))
    n = 3000
    samples = scoremed.sample(prior, n=n, method="ode", seed=0)
    assert samples.shape == (n, 1, 2, 2)
    m, c = _moments(samples)
    se = (torch.diag(cov) / n).sqrt()
    assert torch.all((m - mean).abs() < 5 * se + 0.02)
    assert torch.allclose(c, cov, atol=0.12 * cov.diag().max().item())


def test_score_evaluations_are_counted_and_seeds_reproduce():
    mean, cov = random_gaussian(4)
    prior = scoremed.gaussian_prior(scoremed.VPSDE(), mean, cov, (1, 2, 2))
    records = []
    a = scoremed.sample(prior, n=3, steps=50, corrector="langevin", seed=7, callback=records.append)
    b = scoremed.sample(prior, n=3, steps=50, corrector="langevin", seed=7)
    torch.testing.assert_close(a, b)
    assert records[-1] == {"nfe": 100}
    assert not torch.equal(a, scoremed.sample(prior, n=3, steps=50, seed=8))


def test_pc_sampler_measurement_hook_runs_after_every_update():
    mean, cov = random_gaussian(4)
    prior = scoremed.gaussian_prior(scoremed.VESDE(), mean, cov, (1, 2, 2))
    calls = []

    def clamp_first_pixel(x, x_mean, t):
        calls.append(1)
        x, x_mean = x.clone(), x_mean.clone()
        x[:, 0, 0, 0] = 0.25
        x_mean[:, 0, 0, 0] = 0.25
        return x, x_mean

    sde = prior.sde.with_steps(20)
    from scoremed.sampling import Langevin, ReverseDiffusion
    result = scoremed.pc_sampler(sde, prior.score, (5, 1, 2, 2), ReverseDiffusion, Langevin,
                                 conditioning=clamp_first_pixel)
    assert len(calls) == 40 and result.nfe == 40
    assert torch.all(result.samples[:, 0, 0, 0] == 0.25)


def test_bad_sampler_arguments_are_named():
    prior = scoremed.gaussian_prior(scoremed.subVPSDE(), *random_gaussian(4), (1, 2, 2))
    with pytest.raises(InputError, match="predictor"):
        scoremed.sample(prior, n=1, steps=5, predictor="heun")
    with pytest.raises(InputError, match="ancestral"):
        scoremed.sample(prior, n=1, steps=5, predictor="ancestral")
    with pytest.raises(InputError, match="method"):
        scoremed.sample(prior, n=1, method="ddim")
    with pytest.raises(InputError, match="n:"):
        scoremed.sample(prior, n=0)

"""SDEs: marginals against forward simulation of their own discretisation, priors, reverse SDE."""
import math

import pytest
import torch

import scoremed
from scoremed.errors import InputError
from scoremed.sde import sde_from_config

SDES = [scoremed.VESDE(sigma_min=0.01, sigma_max=5.0, N=200), scoremed.VPSDE(N=200), scoremed.subVPSDE(N=200)]


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_marginal_prob_matches_simulated_discretisation(sde):
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((8000, 1), 0.7, dtype=torch.float64)
    x = x0.clone()
    checkpoints = {50: None, 120: None, 199: None}
    for i in range(sde.N):
        t = torch.full((x.shape[0],), i / (sde.N - 1) * sde.T, dtype=torch.float64)
        f, G = sde.discretize(x, t)
        x = x + f + G[:, None] * torch.randn(x.shape, generator=g, dtype=torch.float64)
        if i in checkpoints:
            checkpoints[i] = x.clone()
    for i, xi in checkpoints.items():
        t = torch.full((1,), i / (sde.N - 1) * sde.T, dtype=torch.float64)
        mean, std = sde.marginal_prob(x0[:1], t)
        assert xi.mean().item() == pytest.approx(mean.item(), abs=4 * std.item() / math.sqrt(x.shape[0]) + 0.01 * abs(mean.item()))
        assert xi.std().item() == pytest.approx(std.item(), rel=0.05)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_prior_logp_is_the_gaussian_density(sde):
    z = sde.prior_sampling((3, 1, 4, 4), torch.Generator().manual_seed(1), dtype=torch.float64)
    reference = torch.distributions.Normal(0.0, sde.prior_std()).log_prob(z).flatten(1).sum(1)
    torch.testing.assert_close(sde.prior_logp(z), reference)


def test_reverse_sde_and_probability_flow_drifts():
    sde = scoremed.VESDE()
    score = lambda x, t: -x  # noqa: E731
    x, t = torch.randn(2, 1, 3, 3), torch.rand(2)
    _, g = sde.sde(x, t)
    drift, diffusion = sde.reverse(score).sde(x, t)
    torch.testing.assert_close(drift, g[:, None, None, None] ** 2 * x)
    torch.testing.assert_close(diffusion, g)
    drift_ode, diffusion_ode = sde.reverse(score, probability_flow=True).sde(x, t)
    torch.testing.assert_close(drift_ode, 0.5 * g[:, None, None, None] ** 2 * x)
    assert torch.all(diffusion_ode == 0)


def test_broadcasting_handles_volumes_and_coil_stacks():
    sde = scoremed.VPSDE()
    for shape in [(2, 3), (2, 1, 4, 4), (2, 1, 3, 4, 4), (2, 8, 1, 4, 4)]:
        x = torch.randn(shape)
        mean, std = sde.marginal_prob(x, torch.rand(2))
        assert mean.shape == x.shape and std.shape == (2,)


def test_config_round_trip_and_bad_parameters():
    for sde in SDES:
        cfg = sde.config()
        assert sde_from_config(cfg.pop("kind"), **cfg).config() == sde.config()
    with pytest.raises(InputError, match="sigma_min"):
        scoremed.VESDE(sigma_min=5, sigma_max=1)
    with pytest.raises(InputError, match="sde.kind"):
        sde_from_config("ddim")

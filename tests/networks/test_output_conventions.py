"""Output conventions against the closed-form score of N(0, sigma_data^2 I) data: "edm" with F = 0 (the
denoiser is then c_skip y, that Gaussian's posterior mean) and "residual" with the optimal noise estimate."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import scoremed
from scoremed.networks.score_network import ScoreNetwork


class Zero(nn.Module):
    def forward(self, x, label):
        return torch.zeros_like(x)


@pytest.mark.parametrize("sde", [scoremed.VESDE(sigma_min=0.01, sigma_max=50.0), scoremed.VPSDE(),
                                 scoremed.subVPSDE()], ids=lambda s: type(s).__name__)
def test_zero_edm_network_is_the_score_of_gaussian_data(sde):
    sigma_data = 0.37
    net = ScoreNetwork(Zero(), sde, output="edm", sigma_data=sigma_data)
    t = torch.tensor([1e-3, 0.05, 0.3, 0.9], dtype=torch.float64)
    x = torch.randn(4, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a, std = sde.mean_coeff(t), sde.marginal_std(t)
    expected = -x / (a * a * sigma_data ** 2 + std * std).view(-1, 1, 1, 1)
    assert torch.allclose(net(x, t), expected, rtol=1e-6, atol=0)  # (a D - x) / std^2 cancels at tiny std


def test_edm_output_feeds_the_backbone_scaled_inputs():
    seen = {}

    class Record(Zero):
        def forward(self, x, label):
            seen["x"] = x
            return super().forward(x, label)

    sde = scoremed.VESDE(sigma_min=0.01, sigma_max=50.0)
    net = ScoreNetwork(Record(), sde, output="edm", sigma_data=0.5, input_scaling=False)
    x, t = torch.full((1, 1, 2, 2), 3.0), torch.tensor([0.5])
    net(x, t)
    assert torch.allclose(seen["x"], x / torch.sqrt(0.25 + sde.marginal_std(t) ** 2))


class OptimalResidual(nn.Module):
    """The MMSE noise estimate of the scaled input u = c_in y for N(0, sigma_data^2 I) data under a VE SDE:
    y - D = sigma^2 / (sigma^2 + sigma_data^2) y, i.e. out = sigma^2 / (sigma^2 + sigma_data^2) u."""

    def __init__(self, sde, sigma_data):
        super().__init__()
        self.sde, self.sigma_data = sde, sigma_data

    def forward(self, u, label):
        sigma2 = self.sde.marginal_std(label / 999.0) ** 2
        return (sigma2 / (sigma2 + self.sigma_data ** 2)).view(-1, 1, 1, 1) * u


def test_residual_output_of_the_optimal_noise_estimate_is_the_gaussian_score():
    sde, sigma_data = scoremed.VESDE(sigma_min=0.01, sigma_max=50.0), 0.37
    net = ScoreNetwork(OptimalResidual(sde, sigma_data), sde, output="residual", sigma_data=sigma_data)
    t = torch.tensor([1e-3, 0.05, 0.3, 0.9], dtype=torch.float64)
    x = torch.randn(4, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = -x / (sigma_data ** 2 + sde.marginal_std(t) ** 2).view(-1, 1, 1, 1)
    assert torch.allclose(net(x, t), expected, rtol=1e-9, atol=0)

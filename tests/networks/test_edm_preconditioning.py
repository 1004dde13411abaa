"""EDM preconditioning (output "edm"): with F = 0 the denoiser is c_skip y, the exact posterior mean of
N(0, sigma_data^2 I) data, so the score must equal that Gaussian's closed-form noised score."""
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

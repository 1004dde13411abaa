"""Training-time noise levels: uniform in t, or log-normal in sigma with a uniform share."""
from __future__ import annotations

import math

import pytest
import torch

import scoremed
from scoremed.denoising import noise_to_signal
from scoremed.errors import InputError
from scoremed.training.config import config_from_dict
from scoremed.training.losses import NoiseSampling, draw_dsm_noise

N = 40_000


def test_uniform_sampling_is_uniform_in_t():
    sde, g = scoremed.VESDE(), torch.Generator().manual_seed(0)
    t = NoiseSampling().times(sde, N, 1e-3, g)
    expected = torch.rand(N, generator=torch.Generator().manual_seed(0)) * (1 - 1e-3) + 1e-3
    assert torch.equal(t, expected)


@pytest.mark.parametrize("sde", [scoremed.VESDE(sigma_min=0.01, sigma_max=50.0), scoremed.VPSDE()],
                         ids=lambda s: type(s).__name__)
def test_lognormal_sampling_has_the_asked_moments_of_log_sigma(sde):
    # mean and std chosen so the clip to the SDE's range touches ~1e-7 of the mass
    sampling = NoiseSampling("lognormal", log_mean=-1.5, log_std=0.5, uniform_fraction=0.0)
    t = sampling.times(sde, N, 1e-5, torch.Generator().manual_seed(1))
    log_sigma = noise_to_signal(sde, t.double()).log()
    assert abs(float(log_sigma.mean()) + 1.5) < 4 * 0.5 / math.sqrt(N)
    assert abs(float(log_sigma.std()) - 0.5) < 4 * 0.5 / math.sqrt(2 * N)


def test_the_uniform_share_of_a_lognormal_sampling():
    """Times above 0.8 have probability 0.2 under U[0, 1] and ~0 under the narrow log-normal."""
    sde = scoremed.VESDE(sigma_min=0.01, sigma_max=50.0)
    sampling = NoiseSampling("lognormal", log_mean=-3.0, log_std=0.3, uniform_fraction=0.25)
    t = sampling.times(sde, N, 1e-5, torch.Generator().manual_seed(2))
    share = float((t > 0.8).double().mean())
    assert abs(share - 0.25 * 0.2) < 4 * math.sqrt(0.05 * 0.95 / N)
    assert float(t.min()) >= 1e-5 and float(t.max()) <= 1.0


def test_draws_are_reproducible_and_keep_their_order():
    sde, sampling = scoremed.VESDE(), NoiseSampling("lognormal")
    a = draw_dsm_noise(sde, (4, 1, 2, 2), 1e-5, torch.Generator().manual_seed(3), sampling=sampling)
    b = draw_dsm_noise(sde, (4, 1, 2, 2), 1e-5, torch.Generator().manual_seed(3), sampling=sampling)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("training, message", [
    ({"noise_sampling": "edm"}, r"training.noise_sampling expected one of \['uniform', 'lognormal'\]"),
    ({"noise_log_std": 0.0}, r"training.noise_log_std expected a value > 0"),
    ({"noise_uniform_fraction": 1.5}, r"training.noise_uniform_fraction expected a value in \[0, 1\)"),
])
def test_bad_noise_sampling_settings_are_named(training, message):
    with pytest.raises(InputError, match=message):
        config_from_dict({"training": training})


def test_the_config_gives_its_noise_sampling():
    config = config_from_dict({"training": {"noise_sampling": "lognormal", "noise_log_mean": -2.0}})
    assert config.noise_sampling() == NoiseSampling("lognormal", -2.0, 1.5, 0.2)

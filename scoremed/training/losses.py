"""Continuous-time denoising score matching (Song et al. 2021, eq. 7).

Training times come from a :class:`NoiseSampling`: uniform in t (Song et al.), or a log-normal
distribution of the noise level sigma = std(t) / a(t) (Karras et al. 2022) mixed with a uniform
share, which spends the training steps where the prior is used as a denoiser (warm-started
solvers run at sigma <= 0.2) without forgetting the large noise levels that sampling from noise needs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from scoremed.denoising import noise_to_signal, time_of_noise_level
from scoremed.errors import InputError
from scoremed.sde import SDE, ScoreFn
from scoremed.utils import append_dims

NOISE_SAMPLINGS = ("uniform", "lognormal")


@dataclass(frozen=True)
class NoiseSampling:
    """How training times are drawn.

    ``kind`` "uniform": t ~ U[eps, T]. "lognormal": ln sigma ~ N(log_mean, log_std^2) (sigma in data
    units, clipped to the SDE's range [sigma(eps), sigma(T)]), except for a share ``uniform_fraction``
    of the batch drawn uniformly in t.
    """
    kind: str = "uniform"
    log_mean: float = -2.5
    log_std: float = 1.5
    uniform_fraction: float = 0.2

    def __post_init__(self):
        if self.kind not in NOISE_SAMPLINGS:
            raise InputError(f"noise sampling: expected one of {NOISE_SAMPLINGS}, got {self.kind!r}")
        if not 0 <= self.uniform_fraction <= 1 or self.log_std <= 0:
            raise InputError(f"noise sampling: expected log_std > 0 and uniform_fraction in [0, 1], got "
                             f"{self.log_std}, {self.uniform_fraction}")

    def times(self, sde: SDE, n: int, eps: float, generator: torch.Generator | None, device=None,
              dtype=torch.float32) -> torch.Tensor:
        """n training times (n,) in [eps, T]."""
        t = torch.rand(n, generator=generator, device=device, dtype=dtype) * (sde.T - eps) + eps
        if self.kind == "uniform":
            return t
        u = torch.randn(n, generator=generator, device=device, dtype=torch.float64)
        pick = torch.rand(n, generator=generator, device=device, dtype=dtype) >= self.uniform_fraction
        ends = noise_to_signal(sde, torch.tensor([eps, sde.T], device=device, dtype=torch.float64))
        sigma = torch.exp(self.log_mean + self.log_std * u).clamp(ends[0], ends[1])
        return torch.where(pick, time_of_noise_level(sde, sigma).to(dtype).clamp(eps, sde.T), t)


def draw_dsm_noise(sde: SDE, shape: tuple[int, ...], eps: float, generator: torch.Generator | None,
                   device=None, dtype=torch.float32,
                   sampling: NoiseSampling = NoiseSampling()) -> tuple[torch.Tensor, torch.Tensor]:
    """Times t (B,) from ``sampling`` and noise z ~ N(0, I) of ``shape``, drawn in that order."""
    t = sampling.times(sde, shape[0], eps, generator, device, dtype)
    z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    return t, z


def dsm_loss_given_noise(score_fn: ScoreFn, sde: SDE, x0: torch.Tensor, t: torch.Tensor, z: torch.Tensor,
                         likelihood_weighting: bool = False) -> torch.Tensor:
    """Per-example DSM loss, shape (B,), at times t (B,) with noise z (like x0); reduce-mean.

    Without likelihood weighting the weight is lambda(t) = std(t)^2, i.e. the loss is
    mean((std * score + z)^2); with it the weight is g(t)^2 (Song et al. 2021b).
    """
    mean, std = sde.marginal_prob(x0, t)
    std_b = append_dims(std, x0.ndim)
    score = score_fn(mean + std_b * z, t)
    if likelihood_weighting:
        g2 = sde.sde(torch.zeros_like(x0[:1]), t)[1] ** 2
        return (score + z / std_b).pow(2).flatten(1).mean(1) * g2
    return (score * std_b + z).pow(2).flatten(1).mean(1)


def dsm_loss(score_fn: ScoreFn, sde: SDE, x0: torch.Tensor, eps: float = 1e-5,
             likelihood_weighting: bool = False, generator: torch.Generator | None = None,
             sampling: NoiseSampling = NoiseSampling()) -> torch.Tensor:
    """Per-example DSM loss (B,) with fresh t from ``sampling`` and z from ``generator``."""
    t, z = draw_dsm_noise(sde, tuple(x0.shape), eps, generator, x0.device, x0.dtype, sampling)
    return dsm_loss_given_noise(score_fn, sde, x0, t, z, likelihood_weighting)

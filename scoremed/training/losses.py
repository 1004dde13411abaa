"""Continuous-time denoising score matching (Song et al. 2021, eq. 7)."""
from __future__ import annotations

import torch

from scoremed.sde import SDE, ScoreFn
from scoremed.utils import append_dims


def draw_dsm_noise(sde: SDE, shape: tuple[int, ...], eps: float, generator: torch.Generator | None,
                   device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Times t ~ U[eps, T] (B,) and noise z ~ N(0, I) of ``shape``, drawn in that order."""
    t = torch.rand(shape[0], generator=generator, device=device, dtype=dtype) * (sde.T - eps) + eps
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
             likelihood_weighting: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-example DSM loss (B,) with fresh t ~ U[eps, T] and z from ``generator``."""
    t, z = draw_dsm_noise(sde, tuple(x0.shape), eps, generator, x0.device, x0.dtype)
    return dsm_loss_given_noise(score_fn, sde, x0, t, z, likelihood_weighting)

"""Continuous-time denoising score matching (Song et al. 2021, eq. 7)."""
from __future__ import annotations

import torch

from scoremed.sde import SDE, ScoreFn
from scoremed.utils import append_dims


def dsm_loss(score_fn: ScoreFn, sde: SDE, x0: torch.Tensor, eps: float = 1e-5,
             likelihood_weighting: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-example DSM loss, shape (B,), with t ~ U[eps, T] and the reduce-mean convention.

    Without likelihood weighting the weight is lambda(t) = std(t)^2, i.e. the loss is
    mean((std * score + z)^2); with it the weight is g(t)^2 (Song et al. 2021b).
    """
    b = x0.shape[0]
    t = torch.rand(b, generator=generator, device=x0.device, dtype=x0.dtype) * (sde.T - eps) + eps
    z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    mean, std = sde.marginal_prob(x0, t)
    std_b = append_dims(std, x0.ndim)
    score = score_fn(mean + std_b * z, t)
    if likelihood_weighting:
        g2 = sde.sde(torch.zeros_like(x0[:1]), t)[1] ** 2
        return (score + z / std_b).pow(2).flatten(1).mean(1) * g2
    return (score * std_b + z).pow(2).flatten(1).mean(1)

"""Correctors of the PC sampler: ``n_steps`` Langevin MCMC steps targeting p_t, ``update(x, t) -> (x, x_mean)``."""
from __future__ import annotations

import torch

from scoremed.errors import InputError
from scoremed.sde import SDE, ScoreFn
from scoremed.utils import append_dims, randn_like


class Corrector:
    """Base corrector: ``n_steps`` unadjusted Langevin steps x <- x + e s(x) + sqrt(2 e) z."""

    def __init__(self, sde: SDE, score_fn: ScoreFn, snr: float = 0.16, n_steps: int = 1,
                 generator: torch.Generator | None = None):
        if snr < 0 or n_steps < 0:
            raise InputError(f"snr, n_steps: expected non-negative values, got {snr}, {n_steps}")
        self.sde, self.score_fn, self.snr, self.n_steps, self.generator = sde, score_fn, snr, int(n_steps), generator

    def step_size(self, grad: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Step e, shape (B,) or () (broadcast over the batch)."""
        raise NotImplementedError

    def update(self, x, t):
        x_mean = x
        for _ in range(self.n_steps):
            grad = self.score_fn(x, t)
            noise = randn_like(x, self.generator)
            step = self.step_size(grad, noise, t)
            step = append_dims(step.expand(x.shape[0]), x.ndim)
            x_mean = x + step * grad
            x = x_mean + torch.sqrt(2 * step) * noise
        return x, x_mean


class Langevin(Corrector):
    """Langevin MCMC with the signal-to-noise step rule e = 2 alpha (snr |z| / |s|)^2 (Song et al. 2021).

    |z| and |s| are the norms averaged over the batch, so e is one number per step. A step taken
    from the iterate's own norms (per example) depends on the state it moves: with D = 16 the
    norm |s(x)| varies by about 35 % between draws and the unadjusted chain then samples a
    covariance 10-15 % off (see tests/sampling/test_closed_form.py); averaged over a batch the
    dependence vanishes. Batches mix examples only through this scalar.
    """

    def step_size(self, grad, noise, t):
        grad_norm = grad.flatten(1).norm(dim=1).mean()
        noise_norm = noise.flatten(1).norm(dim=1).mean()
        return 2 * self.sde.corrector_alpha(t) * (self.snr * noise_norm / grad_norm.clamp_min(1e-12)) ** 2


class AnnealedLangevin(Corrector):
    """Annealed Langevin dynamics of NCSN: e = 2 alpha (snr std(t))^2 (no dependence on the state)."""

    def step_size(self, grad, noise, t):
        return 2 * self.sde.corrector_alpha(t) * (self.snr * self.sde.marginal_std(t)) ** 2


class NoCorrector(Corrector):
    def update(self, x, t):
        return x, x


CORRECTORS = {"langevin": Langevin, "annealed_langevin": AnnealedLangevin, "none": NoCorrector}

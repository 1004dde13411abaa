"""Predictors and correctors of the PC sampler: small classes with ``update(x, t) -> (x, x_mean)``.

Each is built once per sampling call from the SDE, the score function and an explicit
``torch.Generator`` (None: the global RNG).
"""
from __future__ import annotations

import torch

from scoremed.errors import InputError
from scoremed.sde import SDE, ScoreFn
from scoremed.utils import append_dims, randn_like


class Predictor:
    """Base predictor: one reverse-time step from t to t - T/N."""

    def __init__(self, sde: SDE, score_fn: ScoreFn, probability_flow: bool = False,
                 generator: torch.Generator | None = None):
        self.sde, self.score_fn, self.generator = sde, score_fn, generator
        self.rsde = sde.reverse(score_fn, probability_flow)

    def update(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class EulerMaruyama(Predictor):
    """x <- x - f dt + g sqrt(dt) z with the reverse-SDE drift (dt = T / N)."""

    def update(self, x, t):
        dt = -self.sde.T / self.sde.N
        drift, diffusion = self.rsde.sde(x, t)
        x_mean = x + drift * dt
        return x_mean + append_dims(diffusion, x.ndim) * (-dt) ** 0.5 * randn_like(x, self.generator), x_mean


class ReverseDiffusion(Predictor):
    """Reverse of the SDE's own discretisation (SMLD / DDPM): x <- x - f + G z."""

    def update(self, x, t):
        f, G = self.rsde.discretize(x, t)
        x_mean = x - f
        return x_mean + append_dims(G, x.ndim) * randn_like(x, self.generator), x_mean


class Ancestral(Predictor):
    """Ancestral sampling of SMLD (VE) or DDPM (VP)."""

    def __init__(self, sde, score_fn, probability_flow=False, generator=None):
        if probability_flow:
            raise InputError("predictor: ancestral sampling has no probability-flow variant")
        super().__init__(sde, score_fn, False, generator)

    def update(self, x, t):
        x_mean, std = self.sde.ancestral_step(x, t, self.score_fn(x, t))
        return x_mean + append_dims(std, x.ndim) * randn_like(x, self.generator), x_mean


class NoPredictor(Predictor):
    def update(self, x, t):
        return x, x


class Corrector:
    """Base corrector: ``n_steps`` MCMC steps targeting p_t."""

    def __init__(self, sde: SDE, score_fn: ScoreFn, snr: float = 0.16, n_steps: int = 1,
                 generator: torch.Generator | None = None):
        if snr < 0 or n_steps < 0:
            raise InputError(f"snr, n_steps: expected non-negative values, got {snr}, {n_steps}")
        self.sde, self.score_fn, self.snr, self.n_steps, self.generator = sde, score_fn, snr, int(n_steps), generator

    def step_size(self, grad: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, x, t):
        x_mean = x
        for _ in range(self.n_steps):
            grad = self.score_fn(x, t)
            noise = randn_like(x, self.generator)
            step = append_dims(self.step_size(grad, noise, t), x.ndim)
            x_mean = x + step * grad
            x = x_mean + torch.sqrt(2 * step) * noise
        return x, x_mean


class Langevin(Corrector):
    """Langevin MCMC with the signal-to-noise step rule eps = 2 alpha (snr |z| / |score|)^2.

    Norms are taken per example (not averaged over the batch), so each image of a batch
    gets its own step size.
    """

    def step_size(self, grad, noise, t):
        grad_norm = grad.flatten(1).norm(dim=1)
        noise_norm = noise.flatten(1).norm(dim=1)
        return 2 * self.sde.corrector_alpha(t) * (self.snr * noise_norm / grad_norm.clamp_min(1e-12)) ** 2


class AnnealedLangevin(Corrector):
    """Annealed Langevin dynamics of NCSN: eps = 2 alpha (snr std(t))^2."""

    def step_size(self, grad, noise, t):
        return 2 * self.sde.corrector_alpha(t) * (self.snr * self.sde.marginal_std(t)) ** 2


class NoCorrector(Corrector):
    def update(self, x, t):
        return x, x


PREDICTORS = {"euler_maruyama": EulerMaruyama, "reverse_diffusion": ReverseDiffusion, "ancestral": Ancestral,
              "none": NoPredictor}
CORRECTORS = {"langevin": Langevin, "annealed_langevin": AnnealedLangevin, "none": NoCorrector}


def pick(table: dict, name: str, argument: str):
    """The class called ``name`` in ``table``, or an InputError naming ``argument``."""
    if name not in table:
        raise InputError(f"{argument}: expected one of {sorted(table)}, got {name!r}")
    return table[name]

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


class DDIM(Predictor):
    """Deterministic DDIM step (first-order exponential integrator of the probability-flow ODE).

    From grid time t to the next grid time s = t - (T - eps) / (N - 1) (eps = the SDE's
    ``default_eps``, the grid of :func:`scoremed.sampling.time_grid`), with Tweedie's
    x0 = (x + std_t^2 score) / a_t and eps_hat = -std_t score:
    ``x <- a_s x0 + std_s eps_hat``. For VE SDEs this is the exact Euler step in sigma; the
    last step (s <= 0) returns x0. One score evaluation per step, no noise: with a
    measurement step it gives a fast conditional sampler (see ``scoremed.solve``).
    """

    order = 1

    def __init__(self, sde, score_fn, probability_flow=False, generator=None):
        super().__init__(sde, score_fn, True, generator)
        self.h = (sde.T - sde.default_eps) / max(sde.N - 1, 1)
        self._previous = None   # (x0 of the last step, its step in log-SNR) for multistep variants

    def _coefficients(self, t):
        s = t - self.h
        final = s <= 0.5 * self.sde.default_eps
        s = s.clamp_min(self.sde.default_eps)
        a_t, std_t = self.sde.mean_coeff(t), self.sde.marginal_std(t)
        a_s = torch.where(final, torch.ones_like(t), self.sde.mean_coeff(s))
        std_s = torch.where(final, torch.zeros_like(t), self.sde.marginal_std(s))
        return a_t, std_t, a_s, std_s, final

    def denoised(self, x, t, a_t, std_t, a_s, std_s, final):
        """The data estimate the step moves towards (x0 for DDIM)."""
        score = self.score_fn(x, t)
        return (x + append_dims(std_t * std_t, x.ndim) * score) / append_dims(a_t, x.ndim)

    def update(self, x, t):
        a_t, std_t, a_s, std_s, final = self._coefficients(t)
        x0 = self.denoised(x, t, a_t, std_t, a_s, std_s, final)
        ratio = append_dims(std_s / std_t, x.ndim)
        x_mean = ratio * x + append_dims(a_s - a_t * std_s / std_t, x.ndim) * x0
        return x_mean, x_mean


class DPMSolver2M(DDIM):
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in log-SNR, one score evaluation per step.

    Extrapolates the data estimate from this and the previous step,
    D = (1 + 1/(2r)) x0_t - 1/(2r) x0_prev with r = h_prev / h (steps in lambda = log(a / std)),
    then takes the DDIM step towards D. The first step and the final step (to s = 0) are DDIM
    steps. The predictor keeps the previous estimate, so build one per sampling call (as the
    PC sampler does).
    """

    order = 2

    def denoised(self, x, t, a_t, std_t, a_s, std_s, final):
        x0 = super().denoised(x, t, a_t, std_t, a_s, std_s, final)
        lam_t = torch.log(a_t / std_t)
        lam_s = torch.log(a_s / std_s.clamp_min(1e-30))
        h = lam_s - lam_t
        previous, self._previous = self._previous, (x0, lam_t)
        if previous is None:
            return x0
        x0_prev, lam_prev = previous
        r = ((lam_t - lam_prev) / h).clamp_min(1e-6)
        w = append_dims(torch.where(final, torch.zeros_like(r), 0.5 / r), x.ndim)
        return (1 + w) * x0 - w * x0_prev


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
              "ddim": DDIM, "dpm2m": DPMSolver2M, "none": NoPredictor}
CORRECTORS = {"langevin": Langevin, "annealed_langevin": AnnealedLangevin, "none": NoCorrector}


def pick(table: dict, name: str, argument: str):
    """The class called ``name`` in ``table``, or an InputError naming ``argument``."""
    if name not in table:
        raise InputError(f"{argument}: expected one of {sorted(table)}, got {name!r}")
    return table[name]

"""Predictors of the PC sampler: small classes with ``update(x, t) -> (x, x_mean)``.

Each is built once per sampling call from the SDE, the score function and an explicit
``torch.Generator`` (None: the global RNG).
"""
from __future__ import annotations

import torch

from scoremed.errors import InputError
from scoremed.sde import SDE, ScoreFn
from scoremed.utils import append_dims, randn_like


class Predictor:
    """Base predictor: one reverse-time step from t to the next time of the grid."""

    #: True for predictors that step through the Tweedie estimate x0 (they accept ``refine``)
    uses_denoised = False

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
    """DDIM step (Song, Meng & Ermon 2021) in the (a, std) form of any SDE, with stochasticity ``eta``.

    From grid time t to the next grid time s = t - (T - eps) / (N - 1) (eps = the SDE's
    ``default_eps``, the grid of :func:`scoremed.sampling.time_grid`), with Tweedie's
    x0 = (x + std_t^2 score) / a_t and the noise estimate e = -std_t score:
    ``x <- a_s x0 + sqrt(std_s^2 - c^2) e + c z``, c = eta std_s sqrt(1 - (a_t std_s / (a_s std_t))^2).
    eta = 0 is the deterministic first-order exponential integrator of the probability-flow ODE
    (the exact Euler step in sigma for VE SDEs); eta = 1 samples the DDPM / SMLD posterior
    q(x_s | x_t, x0). The last step (s <= 0) returns x0. One score evaluation per step.

    ``refine(x0, t) -> x0`` (a conditioning hook, e.g. conjugate-gradient data consistency)
    replaces the Tweedie estimate before the step; the noise estimate stays the network's.
    """

    order = 1
    uses_denoised = True

    def __init__(self, sde, score_fn, probability_flow=False, generator=None, eta: float = 0.0, refine=None):
        super().__init__(sde, score_fn, True, generator)
        if not 0.0 <= float(eta) <= 1.0:
            raise InputError(f"eta: expected a value in [0, 1], got {eta}")
        self.eta, self.refine = float(eta), refine
        self.h = (sde.T - sde.default_eps) / max(sde.N - 1, 1)
        self._previous = {}   # key -> (x0 of the last step, its lambda) for multistep variants

    def _coefficients(self, t):
        s = t - self.h
        final = s <= 0.5 * self.sde.default_eps
        s = s.clamp_min(self.sde.default_eps)
        a_t, std_t = self.sde.mean_coeff(t), self.sde.marginal_std(t)
        a_s = torch.where(final, torch.ones_like(t), self.sde.mean_coeff(s))
        std_s = torch.where(final, torch.zeros_like(t), self.sde.marginal_std(s))
        return a_t, std_t, a_s, std_s, final

    def extrapolate(self, x0, key, a_t, std_t, a_s, std_s, final):
        """The data estimate the step moves towards (x0 itself for DDIM); ``key`` names the sequence."""
        return x0

    def update(self, x, t):
        a_t, std_t, a_s, std_s, final = self._coefficients(t)
        score = self.score_fn(x, t)
        x0 = (x + append_dims(std_t * std_t, x.ndim) * score) / append_dims(a_t, x.ndim)
        target = self.extrapolate(x0, "network", a_t, std_t, a_s, std_s, final)
        # the kept noise comes from the network's own estimate, also when x0 is refined (DDS)
        noise_hat = (x - append_dims(a_t, x.ndim) * target) / append_dims(std_t, x.ndim)
        if self.refine is not None:
            target = self.extrapolate(self.refine(x0, t), "refined", a_t, std_t, a_s, std_s, final)
        c = self.eta * std_s * torch.sqrt((1 - (a_t * std_s / (a_s * std_t)) ** 2).clamp_min(0))
        keep = torch.sqrt((std_s * std_s - c * c).clamp_min(0))
        x_mean = append_dims(a_s, x.ndim) * target + append_dims(keep, x.ndim) * noise_hat
        if self.eta == 0.0:
            return x_mean, x_mean
        return x_mean + append_dims(c, x.ndim) * randn_like(x, self.generator), x_mean


class DPMSolver2M(DDIM):
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in log-SNR, one score evaluation per step.

    Extrapolates the data estimate from this and the previous step,
    D = (1 + 1/(2r)) x0_t - 1/(2r) x0_prev with r = h_prev / h (steps in lambda = log(a / std)),
    then takes the DDIM step towards D (noise (x - a_t D) / std_t). With ``refine`` the refined
    estimates are extrapolated the same way and replace D in the data term only. The first step
    and the final step (to s = 0) are DDIM steps. The predictor keeps the previous estimates, so
    build one per sampling call (as the PC sampler does).
    """

    order = 2

    def extrapolate(self, x0, key, a_t, std_t, a_s, std_s, final):
        lam_t = torch.log(a_t / std_t)
        lam_s = torch.log(a_s / std_s.clamp_min(1e-30))
        h = lam_s - lam_t
        previous = self._previous.get(key)
        self._previous[key] = (x0, lam_t)
        if previous is None:
            return x0
        x0_prev, lam_prev = previous
        r = ((lam_t - lam_prev) / h).clamp_min(1e-6)
        w = append_dims(torch.where(final, torch.zeros_like(r), 0.5 / r), x0.ndim)
        return (1 + w) * x0 - w * x0_prev


class DiffPIR(DDIM):
    """DiffPIR's step (Zhu et al., CVPRW 2023) in the (a, std) form of any SDE.

    Towards the data estimate x0 (refined when a conditioning refines it) with the noise
    re-estimated *from that estimate* and mixed with fresh noise:
    ``x <- a_s x0 + std_s (sqrt(1 - eta) e + sqrt(eta) z)``, ``e = (x - a_t x0) / std_t``.
    ``eta`` is DiffPIR's zeta: 0 deterministic, 1 all fresh noise. The last step returns x0.
    """

    def update(self, x, t):
        a_t, std_t, a_s, std_s, _ = self._coefficients(t)
        score = self.score_fn(x, t)
        x0 = (x + append_dims(std_t * std_t, x.ndim) * score) / append_dims(a_t, x.ndim)
        if self.refine is not None:
            x0 = self.refine(x0, t)
        noise_hat = (x - append_dims(a_t, x.ndim) * x0) / append_dims(std_t, x.ndim)
        x_mean = append_dims(a_s, x.ndim) * x0 + append_dims(std_s * (1 - self.eta) ** 0.5, x.ndim) * noise_hat
        if self.eta == 0.0:
            return x_mean, x_mean
        return x_mean + append_dims(std_s * self.eta ** 0.5, x.ndim) * randn_like(x, self.generator), x_mean


class NoPredictor(Predictor):
    def update(self, x, t):
        return x, x


PREDICTORS = {"euler_maruyama": EulerMaruyama, "reverse_diffusion": ReverseDiffusion, "ancestral": Ancestral,
              "ddim": DDIM, "dpm2m": DPMSolver2M, "diffpir": DiffPIR, "none": NoPredictor}


def pick(table: dict, name: str, argument: str):
    """The class called ``name`` in ``table``, or an InputError naming ``argument``."""
    if name not in table:
        raise InputError(f"{argument}: expected one of {sorted(table)}, got {name!r}")
    return table[name]

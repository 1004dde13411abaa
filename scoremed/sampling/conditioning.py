"""Conditioning: the measurement steps that turn the unconditional samplers into conditional ones.

A :class:`Conditioning` has four hooks, each a no-op by default, that the samplers apply:

- ``guide(score_fn)``: a guided score (DPS);
- ``refine(x0, t)``: a new Tweedie estimate inside DDIM-type predictors (DDS: conjugate-gradient
  data consistency);
- ``step(x, x_mean, t)``: after every predictor and corrector update (transform-domain
  consistency of Song et al. 2022, hard projection);
- ``finish(x)``: once on the returned sample (a final hard projection).

All work through the operator protocol only (``forward``, ``adjoint`` and, for decomposable
operators, ``embed`` / ``inverse_transform``), in the prior's model space.
"""
from __future__ import annotations

from typing import Callable

import torch

from scoremed.sde import SDE, ScoreFn
from scoremed.utils import append_dims, randn_like


def as_image(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The real part of v when the images (``like``) are real; v otherwise."""
    return v.real if v.is_complex() and not like.is_complex() else v


def back_projector(operator) -> Callable[[torch.Tensor], torch.Tensor]:
    """B: measurement-space residual -> image-space correction.

    T^{-1} embed for decomposable operators (A = P(Λ) T; the transform-domain update
    k <- k + lam Λ (embed(y') - k) of Song et al., ICLR 2022) and A^H otherwise (exact for
    operators with A A^H = I, a gradient step on ||A x - y'||^2 / 2 in general).
    """
    if hasattr(operator, "embed") and hasattr(operator, "inverse_transform"):
        return lambda r: operator.inverse_transform(operator.embed(r))
    return operator.adjoint


def project(x: torch.Tensor, y: torch.Tensor, operator, lam: float = 1.0) -> torch.Tensor:
    """x + lam * B (y - A x): hard (lam = 1) or soft data consistency with measurement y."""
    back = back_projector(operator)
    return x + lam * as_image(back(y - operator(x)), x)


class Conditioning:
    """No conditioning; the base of every measurement step (see the module docstring)."""

    #: True when :meth:`refine` changes the Tweedie estimate (needs a DDIM-type predictor)
    refines = False
    #: True when :meth:`step` changes the iterate between updates
    has_steps = False

    def guide(self, score_fn: ScoreFn) -> ScoreFn:
        return score_fn

    def refine(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x0

    def step(self, x: torch.Tensor, x_mean: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x_mean

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def conditional_score(self, sde: SDE, score_fn: ScoreFn) -> ScoreFn:
        """The score an ODE solver integrates: the guided score, with the refined Tweedie estimate
        substituted (score = (a x0' - x) / std^2)."""
        guided = self.guide(score_fn)
        if not self.refines:
            return guided

        def refined(x, t):
            a, std = append_dims(sde.mean_coeff(t), x.ndim), append_dims(sde.marginal_std(t), x.ndim)
            x0 = self.refine((x + std * std * guided(x, t)) / a, t)
            return (a * x0 - x) / (std * std)
        return refined


class StepFunction(Conditioning):
    """A plain ``step(x, x_mean, t) -> (x, x_mean)`` as a conditioning."""

    has_steps = True

    def __init__(self, fn: Callable):
        self.fn = fn

    def step(self, x, x_mean, t):
        return self.fn(x, x_mean, t)


def as_conditioning(conditioning: Conditioning | Callable | None) -> Conditioning:
    """None -> no conditioning; a callable -> :class:`StepFunction`; a Conditioning as it is."""
    if conditioning is None:
        return Conditioning()
    if isinstance(conditioning, Conditioning):
        return conditioning
    return StepFunction(conditioning)


class ConsistencyStep(Conditioning):
    """Song, Shen, Xing & Ermon (2022): merge the measurement perturbed to noise level t.

    y_t = a(t) y + std(t) A z with fresh z per call; x is pulled towards y_t and x_mean
    towards the noise-free a(t) y, both with weight ``lam``. ``perturb=False`` is the hard
    projection onto a(t) y. The final sample is projected onto the clean measurement.
    """

    has_steps = True

    def __init__(self, sde: SDE, operator, y: torch.Tensor, lam: float = 1.0,
                 generator: torch.Generator | None = None, perturb: bool = True):
        self.sde, self.operator, self.y, self.lam = sde, operator, y, lam
        self.generator, self.perturb = generator, perturb
        self.back = back_projector(operator)

    def step(self, x, x_mean, t):
        a = append_dims(self.sde.mean_coeff(t), self.y.ndim).to(self.y.dtype)
        y_mean = a * self.y
        if self.perturb:
            std = append_dims(self.sde.marginal_std(t), self.y.ndim).to(self.y.dtype)
            y_t = y_mean + std * self.operator(randn_like(x, self.generator))
        else:
            y_t = y_mean
        x = x + self.lam * as_image(self.back(y_t - self.operator(x)), x)
        x_mean = x_mean + self.lam * as_image(self.back(y_mean - self.operator(x_mean)), x_mean)
        return x, x_mean

    def finish(self, x):
        return project(x, self.y, self.operator)


class DPSScore:
    """Diffusion posterior sampling (Chung et al., ICLR 2023) as a guided score.

    score(x, t) - w(t) grad_x ||y - A x0_hat(x)||, with Tweedie's x0_hat = (x + std^2 s) / a.
    The weight w(t) = zeta / G(t)^2 (G from the SDE's discretisation) makes one
    reverse-diffusion step move x by exactly -zeta * grad, the DPS update.
    Works with any operator that has a differentiable ``forward``.
    """

    def __init__(self, sde: SDE, score_fn: ScoreFn, operator, y: torch.Tensor, zeta: float = 1.0):
        self.sde, self.score_fn, self.operator, self.y, self.zeta = sde, score_fn, operator, y, zeta

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            score = self.score_fn(x, t)
            a = append_dims(self.sde.mean_coeff(t), x.ndim)
            std = append_dims(self.sde.marginal_std(t), x.ndim)
            x0_hat = (x + std * std * score) / a
            residual = (self.y - self.operator(x0_hat)).flatten(1)
            norm = torch.linalg.vector_norm(residual, dim=1)
            grad = torch.autograd.grad(norm.sum(), x)[0]
        g2 = append_dims(self.sde.discretize(x, t)[1] ** 2, x.ndim)
        return score.detach() - self.zeta / g2 * grad


class DPSGuidance(Conditioning):
    """DPS as a conditioning: the guided score of :class:`DPSScore`."""

    def __init__(self, sde: SDE, operator, y: torch.Tensor, zeta: float = 1.0):
        self.sde, self.operator, self.y, self.zeta = sde, operator, y, zeta

    def guide(self, score_fn):
        return DPSScore(self.sde, score_fn, self.operator, self.y, self.zeta)

"""Measurement steps that turn the unconditional PC loop into a conditional one.

All work through the operator protocol only (``forward``, ``adjoint`` and, for
decomposable operators, ``embed`` / ``inverse_transform``), in the prior's model space.

Data consistency moves x towards a target measurement y' with weight lam:
``x <- x + lam * B (y' - A x)``, where the back-projector B is T^{-1} embed for
decomposable operators (A = P(Λ) T; this is the transform-domain update
``k <- k + lam Λ (embed(y') - k)`` of Song et al., ICLR 2022) and A^H otherwise (exact for
operators with A A^H = I, a gradient step on ||A x - y'||^2 / 2 in general).
"""
from __future__ import annotations

from typing import Callable

import torch

from scoremed.sde import SDE, ScoreFn
from scoremed.utils import append_dims, randn_like


def back_projector(operator) -> Callable[[torch.Tensor], torch.Tensor]:
    """B: measurement-space residual -> image-space correction (see module docstring)."""
    if hasattr(operator, "embed") and hasattr(operator, "inverse_transform"):
        return lambda r: operator.inverse_transform(operator.embed(r))
    return operator.adjoint


def _as_image(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.real if v.is_complex() and not like.is_complex() else v


def project(x: torch.Tensor, y: torch.Tensor, operator, lam: float = 1.0) -> torch.Tensor:
    """x + lam * B (y - A x): hard (lam = 1) or soft data consistency with measurement y."""
    back = back_projector(operator)
    return x + lam * _as_image(back(y - operator(x)), x)


class ConsistencyStep:
    """Song, Shen, Xing & Ermon (2022): merge the measurement perturbed to noise level t.

    y_t = a(t) y + std(t) A z with fresh z per call; x is pulled towards y_t and x_mean
    towards the noise-free a(t) y, both with weight ``lam``.
    """

    def __init__(self, sde: SDE, operator, y: torch.Tensor, lam: float = 1.0,
                 generator: torch.Generator | None = None, perturb: bool = True):
        self.sde, self.operator, self.y, self.lam = sde, operator, y, lam
        self.generator, self.perturb = generator, perturb
        self.back = back_projector(operator)

    def __call__(self, x: torch.Tensor, x_mean: torch.Tensor, t: torch.Tensor):
        a = append_dims(self.sde.mean_coeff(t), self.y.ndim).to(self.y.dtype)
        y_mean = a * self.y
        if self.perturb:
            std = append_dims(self.sde.marginal_std(t), self.y.ndim).to(self.y.dtype)
            y_t = y_mean + std * self.operator(randn_like(x, self.generator))
        else:
            y_t = y_mean
        x = x + self.lam * _as_image(self.back(y_t - self.operator(x)), x)
        x_mean = x_mean + self.lam * _as_image(self.back(y_mean - self.operator(x_mean)), x_mean)
        return x, x_mean


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

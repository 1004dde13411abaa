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

from scoremed.sampling.cg import conjugate_gradient
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
    if operator.decomposable:
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

    def guide(self, score_fn: ScoreFn) -> ScoreFn:
        return score_fn

    def refine(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x0

    def step(self, x: torch.Tensor, x_mean: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x_mean

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        return x


class StepFunction(Conditioning):
    """A plain ``step(x, x_mean, t) -> (x, x_mean)`` as a conditioning."""

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

    Made for stochastic predictors: a deterministic (DDIM-type) step keeps the noise it reads
    from the iterate, so the fresh measurement noise is never forgotten and the unmeasured part
    lags behind (posterior-mean error 0.31x the prior's on the 4x4 inpainting Gaussian with DDIM,
    against 0.03x with the Tweedie estimate made consistent instead: :class:`DDSStep`).
    """

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

    The paper's normalised step x <- x' - zeta_t grad_x ||y - A x0_hat||^2, zeta_t = zeta rho_t / ||y - A x0_hat||,
    with Tweedie's x0_hat = (x + std^2 s) / a, written as the guided score s - w_t grad_x ||y - A x0_hat|| so
    that one reverse-diffusion step (x moves by G^2 times the score) takes exactly that step. The paper's
    rho_t = 1 belongs to its 1000-step DDPM at 256 x 256; here rho_t is the size of the step's noise share:

        rho_t = f_t (std / a) a^2 ||A||_F / ||A||^2,    f_t = min(G^2 / std^2, 1)

    f_t is the share of the noise variance the step removes (G from the SDE's discretisation; 1 - sigma_(i-1)^2
    / sigma_i^2 on VE, beta_i / (1 - alpha_bar_i) on VP), std / a the noise level of the estimate and
    (std / a) ||A||_F the residual ||A (x0_hat - x0)|| that noise of that level leaves. So the steps shrink
    with the noise (the step of Chung et al. kept the same size from T to 0: the last steps overshot the
    data, and the error grew with the number of steps), their sum does not depend on the number of steps,
    and one zeta serves images of any size and operators of any scale (dividing by ||A||^2 and multiplying by
    ||A||_F leaves the update unchanged when A and y are scaled together). Without the clamp
    w_t = 2 zeta ||A||_F / (||A||^2 std / a): the guidance of the Gaussian likelihood
    exp(-||y - A x0_hat||^2 / (2 (std / a)^2 ||A||^2)) at a residual of 2 zeta (std / a) ||A||_F, stronger below
    it, weaker above. ||A||_F is estimated once per example from :data:`PROBES` fixed Rademacher probes (exact
    for masks: inpainting, Cartesian sampling).

    ``scale`` is ||A|| (1 when unknown). Guard: an example whose residual ||y - A x0_hat|| is non-finite
    or above ``guard`` ||y|| takes the unguided step instead (fallback). The largest residual ratio
    ||y - A x0_hat|| / ||y|| of every evaluation is kept on the device (no host read); :meth:`diverged_at`
    reads them once after the loop: a run whose last estimate fits y worse than its first one (the estimate
    at T, about the prior mean) has diverged, from the first evaluation after which the ratio never fell
    back below the first.
    """

    #: Rademacher probes of the ||A||_F estimate (E ||A z||^2 = ||A||_F^2)
    PROBES = 4

    def __init__(self, sde: SDE, score_fn: ScoreFn, operator, y: torch.Tensor, zeta: float = 2.0,
                 scale: float = 1.0, guard: float = 10.0):
        self.sde, self.score_fn, self.operator, self.y = sde, score_fn, operator, y
        self.zeta, self.scale = float(zeta), float(scale)
        self.y_norm = torch.linalg.vector_norm(y.flatten(1), dim=1).clamp_min(torch.finfo(torch.float32).tiny)
        self.guard = guard
        self.ratios: list[torch.Tensor] = []
        self._gain: torch.Tensor | None = None

    def gain(self, x: torch.Tensor) -> torch.Tensor:
        """2 zeta ||A||_F / ||A||^2 per example, shape (B,); ||A||_F from fixed probes shaped like x (once)."""
        if self._gain is None or self._gain.shape[0] != x.shape[0]:
            g = torch.Generator().manual_seed(0)
            total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
            with torch.no_grad():
                for _ in range(self.PROBES):
                    z = (2.0 * torch.randint(0, 2, x.shape, generator=g) - 1.0).to(device=x.device, dtype=x.dtype)
                    total += torch.linalg.vector_norm(self.operator(z).flatten(1), dim=1).double() ** 2
            frobenius = (total / self.PROBES).sqrt()
            self._gain = (2.0 * self.zeta * frobenius / (self.scale * self.scale)).to(torch.float32)
        return self._gain

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        gain = self.gain(x)
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            score = self.score_fn(x, t)
            a = append_dims(self.sde.mean_coeff(t), x.ndim)
            std = append_dims(self.sde.marginal_std(t), x.ndim)
            x0_hat = (x + std * std * score) / a
            norm = torch.linalg.vector_norm((self.y - self.operator(x0_hat)).flatten(1), dim=1)
            grad = torch.autograd.grad(norm.sum(), x)[0]
        ratio = norm / self.y_norm
        bad = ~torch.isfinite(ratio) | (ratio > self.guard)
        self.ratios.append(torch.where(torch.isfinite(ratio), ratio, torch.full_like(ratio, float("inf"))).max())
        g2 = append_dims(self.sde.discretize(x, t)[1] ** 2, x.ndim)
        # w_t = zeta rho_t / G^2 * 2 (d||r||^2 / ||r|| = 2 d||r||) = gain a std min(1 / std^2, 1 / G^2)
        weight = append_dims(gain, x.ndim).to(grad.dtype) * a * std / torch.maximum(std * std, g2)
        step = torch.where(append_dims(bad, x.ndim), torch.zeros_like(grad), weight * grad)
        return score.detach() - step

    def diverged_at(self) -> int | None:
        """None, or the evaluation from which the residual ratio stayed above the first one when the
        last one is above it (one host read)."""
        if not self.ratios:
            return None
        ratios = torch.stack(self.ratios)
        above = ratios > ratios[0]
        if not bool(above[-1]):
            return None
        below = (~above).nonzero()
        return int(below[-1]) + 1 if below.numel() else 0


class DPSGuidance(Conditioning):
    """DPS as a conditioning: the guided score of :class:`DPSScore` (``guided`` is the last one built)."""

    def __init__(self, sde: SDE, operator, y: torch.Tensor, zeta: float = 2.0, scale: float = 1.0,
                 guard: float = 10.0):
        self.sde, self.operator, self.y, self.zeta, self.scale, self.guard = sde, operator, y, zeta, scale, guard
        self.guided: DPSScore | None = None

    def guide(self, score_fn):
        self.guided = DPSScore(self.sde, score_fn, self.operator, self.y, self.zeta, self.scale, self.guard)
        return self.guided


class DDSStep(Conditioning):
    """Decomposed diffusion sampling (Chung, Lee & Ye, ICLR 2024): conjugate-gradient data consistency
    on the Tweedie estimate, for DDIM-type predictors.

    x0_hat is replaced by ``iterations`` CG iterations started at x0_hat on
    ``A^H A x = A^H y`` (``gamma=None``: noiseless data) or
    ``(I + gamma A^H A) x = x0_hat + gamma A^H y`` (noisy data; gamma weighs the data).
    Needs only ``forward`` and ``adjoint``; complex k-space enters through real inner products
    (normal operator Re(A^H A) on real images). Batched, on the device, no host synchronisation.
    """

    refines = True

    def __init__(self, operator, y: torch.Tensor, iterations: int = 5, gamma: float | None = None):
        self.operator, self.y, self.iterations, self.gamma = operator, y, int(iterations), gamma
        self._adjoint_y = None

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        return as_image(self.operator.adjoint(self.operator(x)), x)

    def refine(self, x0, t):
        return self.consistent(x0, None if self.gamma is None else float(self.gamma))

    def consistent(self, x0: torch.Tensor, gamma: float | torch.Tensor | None) -> torch.Tensor:
        """CG from x0 on the noiseless (gamma None) or noisy normal equations; gamma a number or (B, 1, ...)."""
        if self._adjoint_y is None:
            self._adjoint_y = as_image(self.operator.adjoint(self.y), x0).to(x0.dtype)
        if gamma is None:
            return conjugate_gradient(self._normal, self._adjoint_y, x0, self.iterations)
        return conjugate_gradient(lambda x: x + gamma * self._normal(x), x0 + gamma * self._adjoint_y, x0,
                                  self.iterations)


class ProximalStep(DDSStep):
    """DiffPIR's data step (Zhu et al., CVPRW 2023): the Tweedie estimate replaced by the proximal point
    argmin_x ||y - A x||^2 + rho_t ||x - x0_hat||^2, rho_t = lam sigma_y^2 / sigma_t^2,

    with sigma_t = std(t) / a(t) the noise level of the estimate's input: the operator's closed-form
    ``prox_l2`` where it has one, else CG on ``(I + gamma_t A^H A) x = x0_hat + gamma_t A^H y``,
    gamma_t = 1 / rho_t, started at x0_hat.
    ``sigma_y`` = 0 (noiseless data): the least-squares solution nearest x0_hat (``A^H A x = A^H y``).
    Enough ``iterations`` make it the exact proximal point; DDS instead stops after a few.
    """

    def __init__(self, sde: SDE, operator, y: torch.Tensor, iterations: int = 20, lam: float = 7.0,
                 sigma_y: float = 0.0):
        super().__init__(operator, y, iterations, None)
        self.sde, self.lam, self.sigma_y = sde, float(lam), float(sigma_y)

    def refine(self, x0, t):
        if self.sigma_y == 0.0:
            rho = 0.0
        else:
            level = self.sde.marginal_std(t) / self.sde.mean_coeff(t)
            rho = append_dims(self.lam * self.sigma_y ** 2 / (level * level), x0.ndim).to(x0.dtype)
        if self.operator.has_prox_l2:   # masks, Grayscale, single-coil MRI: the proximal point in closed form
            return self.operator.prox_l2(x0, self.y, rho)
        return self.consistent(x0, None if self.sigma_y == 0.0 else 1 / rho)

"""Continuous-time SDEs of the score-SDE framework (Song et al., ICLR 2021).

Every SDE maps a (B, ...) state and (B,) times t in [0, T] to drift and diffusion;
diffusion coefficients and marginal standard deviations are (B,) tensors and are
broadcast with :func:`scoremed.utils.append_dims`, so the same code serves 2D images,
3D volumes, coil stacks and sinograms.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable

import torch

from scoremed.errors import InputError
from scoremed.utils import append_dims

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class SDE(ABC):
    """dx = f(x, t) dt + g(t) dw on t in [0, T], discretised with N steps for samplers."""

    T: float = 1.0
    #: smallest time used by samplers and training (avoids the singular score at t = 0)
    default_eps: float = 1e-5

    def __init__(self, N: int = 1000):
        if int(N) < 1:
            raise InputError(f"N: expected a positive number of discretisation steps, got {N}")
        self.N = int(N)

    # -- the continuous process -------------------------------------------------
    @abstractmethod
    def sde(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Drift f(x, t) shaped like x and diffusion g(t) shaped (B,)."""

    @abstractmethod
    def mean_coeff(self, t: torch.Tensor) -> torch.Tensor:
        """a(t) with E[x_t | x_0] = a(t) x_0; shape (B,)."""

    @abstractmethod
    def marginal_std(self, t: torch.Tensor) -> torch.Tensor:
        """Standard deviation of x_t | x_0; shape (B,)."""

    def marginal_prob(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (like x) and std (B,) of the perturbation kernel p_t(x_t | x_0 = x)."""
        return append_dims(self.mean_coeff(t), x.ndim) * x, self.marginal_std(t)

    @abstractmethod
    def prior_std(self) -> float:
        """Standard deviation of the isotropic Gaussian p_T."""

    def prior_sampling(self, shape, generator: torch.Generator | None = None, device=None,
                       dtype=torch.float32) -> torch.Tensor:
        """A sample of p_T with the given full shape (batch first)."""
        return torch.randn(shape, generator=generator, device=device, dtype=dtype) * self.prior_std()

    def prior_logp(self, z: torch.Tensor) -> torch.Tensor:
        """log p_T(z) in nats, summed over all but the batch dim; shape (B,)."""
        s = self.prior_std()
        d = z[0].numel()
        return -0.5 * d * math.log(2 * math.pi * s * s) - z.flatten(1).pow(2).sum(1) / (2 * s * s)

    # -- discretisation ------------------------------------------------------------
    def discretize(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_{i+1} = x_i + f_i + G_i z_i; default Euler–Maruyama with dt = T / N."""
        dt = self.T / self.N
        drift, diffusion = self.sde(x, t)
        return drift * dt, diffusion * math.sqrt(dt)

    def step_index(self, t: torch.Tensor) -> torch.Tensor:
        """Index of the discrete noise level that continuous time t falls on; shape (B,)."""
        return (t * (self.N - 1) / self.T).round().long().clamp(0, self.N - 1)

    def ancestral_step(self, x: torch.Tensor, t: torch.Tensor, score: torch.Tensor):
        """One ancestral-sampling step: (mean of x_{i-1}, std (B,)). Not defined for every SDE."""
        raise InputError(f"predictor: ancestral sampling is not defined for {type(self).__name__}; "
                         "use 'reverse_diffusion' or 'euler_maruyama'")

    def corrector_alpha(self, t: torch.Tensor) -> torch.Tensor:
        """Step-size factor alpha_i of the Langevin corrector (1 for VE, alpha_i of DDPM for VP)."""
        return torch.ones_like(t)

    def with_steps(self, N: int) -> "SDE":
        """A copy of this SDE with N discretisation steps."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        SDE.__init__(clone, N)
        clone._discrete_cache = {}
        return clone

    @abstractmethod
    def config(self) -> dict:
        """Constructor arguments plus ``kind``, the inverse of :func:`sde_from_config`."""

    def reverse(self, score_fn: ScoreFn, probability_flow: bool = False) -> "ReverseSDE":
        return ReverseSDE(self, score_fn, probability_flow)

    def _per_device(self, name: str, make: Callable[[], torch.Tensor], device) -> torch.Tensor:
        cache = self.__dict__.setdefault("_discrete_cache", {})
        key = (name, str(device), self.N)
        if key not in cache:
            cache[key] = make().to(device)
        return cache[key]


class ReverseSDE:
    """Reverse-time SDE (or probability-flow ODE) of ``forward_sde`` with score ``score_fn``."""

    def __init__(self, forward_sde: SDE, score_fn: ScoreFn, probability_flow: bool = False):
        self.forward_sde = forward_sde
        self.score_fn = score_fn
        self.probability_flow = probability_flow
        self._weight = 0.5 if probability_flow else 1.0

    @property
    def N(self) -> int:
        return self.forward_sde.N

    @property
    def T(self) -> float:
        return self.forward_sde.T

    def sde(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        drift, diffusion = self.forward_sde.sde(x, t)
        g2 = append_dims(diffusion * diffusion, x.ndim)
        drift = drift - g2 * self.score_fn(x, t) * self._weight
        return drift, torch.zeros_like(diffusion) if self.probability_flow else diffusion

    def discretize(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, G = self.forward_sde.discretize(x, t)
        rev_f = f - append_dims(G * G, x.ndim) * self.score_fn(x, t) * self._weight
        return rev_f, torch.zeros_like(G) if self.probability_flow else G


class VESDE(SDE):
    """Variance exploding: sigma(t) = sigma_min (sigma_max / sigma_min)^t (SMLD / NCSN)."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, N: int = 1000):
        if not 0 < sigma_min < sigma_max:
            raise InputError(f"sigma_min, sigma_max: expected 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        super().__init__(N)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min * torch.exp(t * self._log_ratio)

    def sde(self, x, t):
        return torch.zeros_like(x), self.sigma(t) * math.sqrt(2 * self._log_ratio)

    def mean_coeff(self, t):
        return torch.ones_like(t)

    def marginal_std(self, t):
        return self.sigma(t)

    def prior_std(self):
        return self.sigma_max

    def config(self) -> dict:
        """Constructor arguments plus ``kind``, the inverse of :func:`sde_from_config`."""
        return {"kind": "vesde", "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "N": self.N}

    def discrete_sigmas(self, device) -> torch.Tensor:
        return self._per_device("sigmas", lambda: torch.exp(torch.linspace(
            math.log(self.sigma_min), math.log(self.sigma_max), self.N, dtype=torch.float64)).float(), device)

    def _sigma_pair(self, t):
        idx = self.step_index(t)
        sigmas = self.discrete_sigmas(t.device).to(t.dtype)
        sigma = sigmas[idx]
        previous = torch.where(idx == 0, torch.zeros_like(sigma), sigmas[(idx - 1).clamp(min=0)])
        return sigma, previous

    def discretize(self, x, t):
        """SMLD: x_i = x_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) z."""
        sigma, previous = self._sigma_pair(t)
        return torch.zeros_like(x), torch.sqrt(sigma * sigma - previous * previous)

    def ancestral_step(self, x, t, score):
        sigma, previous = self._sigma_pair(t)
        var_step = sigma * sigma - previous * previous
        x_mean = x + append_dims(var_step, x.ndim) * score
        return x_mean, torch.sqrt(previous * previous * var_step / (sigma * sigma))


class _LinearBetaSDE(SDE):
    """Shared schedule of VP and sub-VP: beta(t) = beta_min + t (beta_max - beta_min)."""

    default_eps = 1e-3

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, N: int = 1000):
        if not 0 < beta_min < beta_max:
            raise InputError(f"beta_min, beta_max: expected 0 < beta_min < beta_max, got {beta_min}, {beta_max}")
        super().__init__(N)
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def beta(self, t):
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_mean_coeff(self, t):
        return -0.25 * t * t * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def mean_coeff(self, t):
        return torch.exp(self.log_mean_coeff(t))

    def prior_std(self):
        return 1.0

    def config(self) -> dict:
        """Constructor arguments plus ``kind``, the inverse of :func:`sde_from_config`."""
        return {"kind": type(self).__name__.lower(), "beta_min": self.beta_min, "beta_max": self.beta_max, "N": self.N}


class VPSDE(_LinearBetaSDE):
    """Variance preserving (DDPM): dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw."""

    def sde(self, x, t):
        beta = self.beta(t)
        return -0.5 * append_dims(beta, x.ndim) * x, torch.sqrt(beta)

    def marginal_std(self, t):
        return torch.sqrt(-torch.expm1(2 * self.log_mean_coeff(t)))

    def discrete_betas(self, device) -> torch.Tensor:
        if self.N <= self.beta_max:
            raise InputError(f"steps: the DDPM discretisation of a VP SDE needs more than beta_max = {self.beta_max:g} "
                             f"steps (1 - beta_i must stay positive), got {self.N}")
        return self._per_device("betas", lambda: torch.linspace(
            self.beta_min / self.N, self.beta_max / self.N, self.N), device)

    def discretize(self, x, t):
        """DDPM: x_i = sqrt(1 - beta_i) x_{i-1} + sqrt(beta_i) z."""
        beta = self.discrete_betas(t.device).to(t.dtype)[self.step_index(t)]
        f = (append_dims(torch.sqrt(1 - beta), x.ndim) - 1) * x
        return f, torch.sqrt(beta)

    def ancestral_step(self, x, t, score):
        beta = self.discrete_betas(t.device).to(t.dtype)[self.step_index(t)]
        x_mean = (x + append_dims(beta, x.ndim) * score) / append_dims(torch.sqrt(1 - beta), x.ndim)
        return x_mean, torch.sqrt(beta)

    def corrector_alpha(self, t):
        return 1 - self.discrete_betas(t.device).to(t.dtype)[self.step_index(t)]


class subVPSDE(_LinearBetaSDE):
    """Sub-VP: diffusion sqrt(beta(t) (1 - exp(-2 int_0^t beta))), variance below VP's."""

    def sde(self, x, t):
        beta = self.beta(t)
        drift = -0.5 * append_dims(beta, x.ndim) * x
        discount = -torch.expm1(-2 * self.beta_min * t - (self.beta_max - self.beta_min) * t * t)
        return drift, torch.sqrt(beta * discount)

    def marginal_std(self, t):
        return -torch.expm1(2 * self.log_mean_coeff(t))


def sde_from_config(kind: str, **params) -> SDE:
    """Build an SDE from its config name ("vesde", "vpsde", "subvpsde") and parameters."""
    classes = {"vesde": VESDE, "vpsde": VPSDE, "subvpsde": subVPSDE}
    if kind.lower() not in classes:
        raise InputError(f"sde.kind: expected one of {sorted(classes)}, got {kind!r}")
    return classes[kind.lower()](**params)

"""Analytic Gaussian priors: the exact score of N(mu, Sigma) diffused by any SDE.

For data x0 ~ N(mu, Sigma) the SDE's marginal is p_t = N(a(t) mu, a(t)^2 Sigma + s(t)^2 I),
so its score and log-density are closed forms. Tests use this to check samplers,
likelihoods and solvers against exact answers; users can use it as a simple prior.
"""
from __future__ import annotations

import math

import torch

from scoremed.errors import InputError
from scoremed.prior import ScorePrior
from scoremed.sde import SDE
from scoremed.utils import append_dims


class GaussianScore:
    """score(x, t) of the diffused Gaussian; x (B, *image_shape), t (B,). float64 internally."""

    def __init__(self, sde: SDE, mean: torch.Tensor, cov: torch.Tensor, image_shape: tuple[int, ...]):
        d = math.prod(image_shape)
        mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        cov = torch.as_tensor(cov, dtype=torch.float64)
        if mean.numel() != d or cov.shape != (d, d):
            raise InputError(f"mean, cov: expected {d} and ({d}, {d}) for image_shape {image_shape}, "
                             f"got {tuple(mean.shape)} and {tuple(cov.shape)}")
        eigval, eigvec = torch.linalg.eigh(cov)
        if eigval.min() < -1e-10:
            raise InputError(f"cov: expected a positive semi-definite matrix, smallest eigenvalue {eigval.min():.3g}")
        self.sde, self.image_shape = sde, tuple(image_shape)
        self.mean, self.cov, self.eigval, self.eigvec = mean, cov, eigval.clamp_min(0), eigvec

    def _whiten(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Coordinates of x - a mu in the eigenbasis and the marginal variances; both (B, D)."""
        t = t.to(torch.float64)
        a, s = self.sde.mean_coeff(t), self.sde.marginal_std(t)
        mean = self.mean.to(x.device)
        centred = x.reshape(x.shape[0], -1).to(torch.float64) - a[:, None] * mean
        var = append_dims(a * a, 2) * self.eigval.to(x.device) + append_dims(s * s, 2)
        return centred @ self.eigvec.to(x.device), var

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        coords, var = self._whiten(x, t)
        score = -(coords / var) @ self.eigvec.to(x.device).T
        return score.reshape(x.shape).to(x.dtype)

    def log_prob(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log p_t(x) in nats; shape (B,)."""
        coords, var = self._whiten(x, t)
        d = coords.shape[1]
        return -0.5 * ((coords ** 2 / var).sum(1) + torch.log(var).sum(1) + d * math.log(2 * math.pi))


def gaussian_prior(sde: SDE, mean: torch.Tensor, cov: torch.Tensor, image_shape: tuple[int, ...]) -> ScorePrior:
    """A :class:`ScorePrior` whose data distribution is N(mean, cov) over flattened images."""
    return ScorePrior(sde, GaussianScore(sde, mean, cov, image_shape), image_shape, name="gaussian")

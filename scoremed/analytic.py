"""Analytic Gaussian priors: the exact score of N(mu, Sigma) diffused by any SDE.

For data x0 ~ N(mu, Sigma) the SDE's marginal is p_t = N(a(t) mu, a(t)^2 Sigma + s(t)^2 I),
so its score and log-density are closed forms. Tests use this to check samplers,
likelihoods and solvers against exact answers; users can use it as a simple prior.

The score goes through an eigendecomposition of Sigma computed once. Eigenvalues equal to
the smallest one (an isotropic floor, e.g. a diagonal nugget under a low-rank covariance)
are handled as one block, so a covariance of rank k plus a nugget costs O(B D k) per
evaluation instead of O(B D^2): thousands of samples of a 16 x 16 image are cheap.
"""
from __future__ import annotations

import math

import torch

from scoremed.errors import InputError
from scoremed.prior import ScorePrior
from scoremed.sde import SDE
from scoremed.utils import append_dims


class GaussianScore:
    """score(x, t) of the diffused Gaussian; x (B, *image_shape), t (B,). float64 internally.

    Sigma = V diag(lam) V^T + floor (I - V V^T), with V (D, k) the eigenvectors whose
    eigenvalues lie above the smallest eigenvalue ``floor`` (relative tolerance ``rtol``).
    """

    def __init__(self, sde: SDE, mean: torch.Tensor, cov: torch.Tensor, image_shape: tuple[int, ...],
                 rtol: float = 1e-9):
        d = math.prod(image_shape)
        mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        cov = torch.as_tensor(cov, dtype=torch.float64)
        if mean.numel() != d or cov.shape != (d, d):
            raise InputError(f"mean, cov: expected {d} and ({d}, {d}) for image_shape {image_shape}, "
                             f"got {tuple(mean.shape)} and {tuple(cov.shape)}")
        eigval, eigvec = torch.linalg.eigh(cov)
        if eigval.min() < -1e-10:
            raise InputError(f"cov: expected a positive semi-definite matrix, smallest eigenvalue {eigval.min():.3g}")
        eigval = eigval.clamp_min(0)
        floor = float(eigval[0])
        above = eigval > floor + rtol * float(eigval[-1])
        self.sde, self.image_shape = sde, tuple(image_shape)
        self.mean, self.cov, self.floor = mean, cov, floor
        self.eigval, self.eigvec = eigval[above], eigvec[:, above]
        self._device_copies: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _on(self, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = str(device)
        if key not in self._device_copies:
            self._device_copies[key] = (self.mean.to(device), self.eigval.to(device), self.eigvec.to(device))
        return self._device_copies[key]

    def _parts(self, x: torch.Tensor, t: torch.Tensor):
        """Centred x - a mu (B, D), its eigen-coordinates (B, k), their variances (B, k) and the
        variance of the isotropic block (B, 1)."""
        t = t.to(torch.float64)
        a, s = append_dims(self.sde.mean_coeff(t), 2), append_dims(self.sde.marginal_std(t), 2)
        mean, eigval, eigvec = self._on(x.device)
        centred = x.reshape(x.shape[0], -1).to(torch.float64) - a * mean
        coords = centred @ eigvec
        return centred, coords, a * a * eigval + s * s, a * a * self.floor + s * s

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        centred, coords, var, var_floor = self._parts(x, t)
        eigvec = self._on(x.device)[2]
        inside = coords @ eigvec.T
        score = -(coords / var) @ eigvec.T - (centred - inside) / var_floor
        return score.reshape(x.shape).to(x.dtype)

    def log_prob(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log p_t(x) in nats; shape (B,)."""
        centred, coords, var, var_floor = self._parts(x, t)
        d, k = centred.shape[1], coords.shape[1]
        rest = (centred.pow(2).sum(1) - coords.pow(2).sum(1)).clamp_min(0)
        quad = (coords ** 2 / var).sum(1) + rest / var_floor[:, 0]
        logdet = torch.log(var).sum(1) + (d - k) * torch.log(var_floor[:, 0])
        return -0.5 * (quad + logdet + d * math.log(2 * math.pi))


def gaussian_prior(sde: SDE, mean: torch.Tensor, cov: torch.Tensor, image_shape: tuple[int, ...]) -> ScorePrior:
    """A :class:`ScorePrior` whose data distribution is N(mean, cov) over flattened images."""
    return ScorePrior(sde, GaussianScore(sde, mean, cov, image_shape), image_shape, name="gaussian")


def gaussian_posterior(matrix: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor,
                       noise_var: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of x | y for x ~ N(mean, cov), y = matrix x (+ N(0, noise_var I)).

    ``matrix`` (M, D) real (stack real and imaginary rows for complex measurements); float64.
    """
    A, y = matrix.to(torch.float64), y.reshape(-1).to(torch.float64)
    gram = A @ cov @ A.T + noise_var * torch.eye(A.shape[0], dtype=torch.float64)
    gain = cov @ A.T @ torch.linalg.pinv(gram, hermitian=True, rtol=1e-10)
    return mean + gain @ (y - A @ mean), cov - gain @ A @ cov

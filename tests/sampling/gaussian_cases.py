"""Closed-form Gaussian test problems and the Monte-Carlo error of their moment estimates.

Three data distributions of different size, covariance and mean (squared-exponential kernels
over pixel positions; the 16 x 16 one of rank 24 plus a nugget, so its score costs O(D k)), the
rms errors that n exact samples would make, and closed-form posteriors of linear measurements.
"""
from __future__ import annotations

import math

import torch

from scoremed.analytic import gaussian_posterior
from scoremed.operators import MRI, Inpainting


def _grid(h: int) -> torch.Tensor:
    return torch.stack(torch.meshgrid(torch.arange(h), torch.arange(h), indexing="ij"), -1).reshape(-1, 2).double()


def squared_exponential(h: int, length: float, var: float, nugget: float, rank: int | None = None) -> torch.Tensor:
    g = _grid(h)
    cov = var * torch.exp(-((g[:, None] - g[None]) ** 2).sum(-1) / (2 * length ** 2))
    if rank is not None:
        lam, vec = torch.linalg.eigh(cov)
        cov = vec[:, -rank:] @ torch.diag(lam[-rank:]) @ vec[:, -rank:].T
    return cov + nugget * torch.eye(h * h, dtype=torch.float64)


def gaussian(d: int) -> tuple[int, torch.Tensor, torch.Tensor]:
    """(h, mean (D,), cov (D, D)) of the test Gaussian of dimension d = h * h (16, 64 or 256)."""
    if d == 16:   # the case: constant mean, smooth covariance plus a small nugget
        return 4, torch.full((16,), 0.5, dtype=torch.float64), squared_exponential(4, 2.0, 0.05, 1e-3)
    rows, cols = (_grid(int(math.isqrt(d))) / math.isqrt(d)).T
    if d == 64:
        return 8, 0.3 + 0.4 * cols, squared_exponential(8, 1.5, 0.1, 1e-3)
    if d == 256:
        return 16, 0.2 + 0.3 * rows + 0.2 * cols, squared_exponential(16, 3.0, 0.03, 2e-3, rank=24)
    raise ValueError(d)


def mc_cov_error(cov: torch.Tensor, n: int) -> float:
    """rms of ||C_n - cov||_F / ||cov||_F for the sample covariance C_n of n exact samples:
    E||C_n - cov||_F^2 = (tr(cov^2) + tr(cov)^2) / n for Gaussian data."""
    return math.sqrt(float(torch.trace(cov @ cov) + torch.trace(cov) ** 2) / n) / float(cov.norm())


def mc_mean_error(cov: torch.Tensor, n: int) -> float:
    """rms of ||m_n - mean|| for the sample mean of n exact samples: sqrt(tr(cov) / n)."""
    return math.sqrt(float(torch.trace(cov)) / n)


def top_variance_ratio(samples: torch.Tensor, cov: torch.Tensor, k: int = 4) -> tuple[float, float]:
    """Mean over the k leading eigen-directions of (sample variance / eigenvalue) and its MC sd
    sqrt(2 / (k n)): a sharp test of a variance bias (the per-example Langevin step gave +12 %)."""
    lam, vec = torch.linalg.eigh(cov)
    x = samples.reshape(samples.shape[0], -1).double()
    ratio = float(((x - x.mean(0)) @ vec[:, -k:]).var(0).div(lam[-k:]).mean())
    return ratio, math.sqrt(2.0 / (k * x.shape[0]))


def ode_mean_bias(sde, mean: torch.Tensor, cov: torch.Tensor) -> float:
    """||x_0 bias|| of an exact probability-flow ODE started from the SDE's p_T = N(0, .) instead of
    N(a_T mean, a_T^2 cov + s_T^2 I): the flow maps x_T - a_T mean to x_0 - mean by
    V diag(sqrt(lam / (a_T^2 lam + s_T^2))) V^T, so the missing a_T mean is carried to the end."""
    t = torch.tensor([sde.T], dtype=torch.float64)
    a, s = float(sde.mean_coeff(t)), float(sde.marginal_std(t))
    lam, vec = torch.linalg.eigh(cov)
    flow = vec @ torch.diag((lam.clamp_min(0) / (a * a * lam.clamp_min(0) + s * s)).sqrt()) @ vec.T
    return float((flow @ (a * mean)).norm())


def left_half(h: int) -> Inpainting:
    mask = torch.zeros(h, h)
    mask[:, : h // 2] = 1
    return Inpainting(mask)


def top_half(h: int) -> Inpainting:
    mask = torch.zeros(h, h)
    mask[: h // 2] = 1
    return Inpainting(mask)


def fourier_columns(h: int) -> MRI:
    """Cartesian k-space mask: the DC column and the outermost column (half the information of a
    real image: the conjugate-symmetric columns in between are missing)."""
    mask = torch.zeros(h, h)
    mask[:, [0, h // 2]] = 1
    return MRI(mask)


def matrix_of(operator, h: int) -> torch.Tensor:
    """The real matrix (M, D) of a linear operator on (1, 1, h, h) images (complex rows split)."""
    basis = torch.eye(h * h, dtype=torch.float64).reshape(-1, 1, h, h)
    A = operator.double()(basis).reshape(h * h, -1).T
    operator.float()
    return torch.cat([A.real, A.imag]) if A.is_complex() else A


def posterior_case(d: int, operator_fn, seed: int = 0):
    """(h, prior mean, cov, image x (1, 1, h, h), operator, y, posterior mean, posterior cov)."""
    h, mean, cov = gaussian(d)
    g = torch.Generator().manual_seed(seed)
    x = (mean + torch.linalg.cholesky(cov) @ torch.randn(d, generator=g, dtype=torch.float64)).reshape(1, 1, h, h)
    operator = operator_fn(h)
    A = matrix_of(operator, h)
    y = operator(x.float())
    post_mean, post_cov = gaussian_posterior(A, A @ x.reshape(-1), mean, cov)
    return h, mean, cov, x.float(), operator, y, post_mean, post_cov

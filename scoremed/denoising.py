"""Priors and denoisers are two views of one object (Tweedie / Miyasawa).

For an image x observed as y = x + sigma n (n ~ N(0, I)), the minimum-MSE denoiser of a prior
p and the score of its noised density p_sigma are tied by D(y, sigma) = y + sigma^2 grad log p_sigma(y):

- :func:`prior_denoiser`: a score prior used as a denoiser (one score call), the fast inner-loop
  measure of how good a prior is (``scoremed benchmark denoise``);
- :func:`denoiser_prior`: any denoiser D(x, sigma) (BM3D, DRUNet, ...) as a :class:`ScorePrior`,
  score = (D - x) / sigma^2, usable by every solver;
- :func:`bm3d_denoiser`: BM3D (the ``bm3d`` package, ``pip install 'scoremed[bm3d]'``) as such a D.

``sigma`` is in data units (images in [0, 1] for the shipped priors); a centred prior works in
2 x - 1, where the same noise is 2 sigma.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from scoremed.errors import InputError
from scoremed.prior import ScorePrior
from scoremed.sde import SDE
from scoremed.utils import append_dims

#: a denoiser ``D(x (B, C, H, W), sigma (B,)) -> (B, C, H, W)``
DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def noise_to_signal(sde: SDE, t: torch.Tensor) -> torch.Tensor:
    """sigma(t) = std(t) / a(t): the noise level of x_t / a(t) around the clean image, shape like t."""
    return sde.marginal_std(t) / sde.mean_coeff(t)


def time_of_noise_level(sde: SDE, sigma: torch.Tensor, iterations: int = 60) -> torch.Tensor:
    """The time t (like ``sigma``) at which std(t) / a(t) = sigma, by bisection on [0, T].

    std / a increases with t for every scoremed SDE. Levels outside the SDE's range raise an
    InputError (a VE SDE with sigma_min 0.01 knows nothing below 0.01).
    """
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    lo_t, hi_t = torch.zeros_like(sigma), torch.full_like(sigma, float(sde.T))
    low, high = noise_to_signal(sde, lo_t), noise_to_signal(sde, hi_t)
    if bool(((sigma < low * (1 - 1e-6)) | (sigma > high * (1 + 1e-6))).any()):
        raise InputError(f"sigma: this prior's SDE covers noise levels {float(low.min()):.3g} ... "
                         f"{float(high.max()):.3g}, got {sigma.flatten().tolist()}")
    for _ in range(iterations):
        mid = (lo_t + hi_t) / 2
        below = noise_to_signal(sde, mid) < sigma
        lo_t, hi_t = torch.where(below, mid, lo_t), torch.where(below, hi_t, mid)
    return (lo_t + hi_t) / 2


def prior_denoiser(prior: ScorePrior) -> DenoiseFn:
    """The prior's Tweedie denoiser D(y, sigma) for y = x + sigma n in data space (one score call).

    y: (B, C, H, W) noisy images; sigma: (B,) or a float, the noise standard deviation in data
    units. Returns the posterior-mean estimate E[x | y], (B, C, H, W), in data space.
    """
    def denoise(y: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float64).expand(y.shape[0])
        t = time_of_noise_level(prior.sde, sigma * prior.model_scale).to(y.device, y.dtype)
        a = append_dims(prior.sde.mean_coeff(t), y.ndim)
        std = append_dims(prior.sde.marginal_std(t), y.ndim)
        x_t = a * prior.to_model(y)
        with torch.no_grad():
            x0 = (x_t + std * std * prior.score(x_t, t)) / a
        return prior.from_model(x0)

    return denoise


class DenoiserScore:
    """score(x_t, t) = (a D(x_t / a, std / a) - x_t) / std^2 from a data-space denoiser D (see the module)."""

    def __init__(self, denoise_fn: DenoiseFn, sde: SDE):
        self.denoise_fn, self.sde = denoise_fn, sde

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = append_dims(self.sde.mean_coeff(t), x.ndim)
        std = append_dims(self.sde.marginal_std(t), x.ndim)
        clean = self.denoise_fn(x / a, noise_to_signal(self.sde, t))
        if clean.shape != x.shape:
            raise InputError(f"denoiser: expected an output shaped like its input {tuple(x.shape)}, "
                             f"got {tuple(clean.shape)}")
        return (a * clean - x) / (std * std)


def denoiser_prior(denoise_fn: DenoiseFn, sde: SDE, image_shape: tuple[int | None, ...] = (1, None, None),
                   name: str = "denoiser") -> ScorePrior:
    """Any denoiser ``D(x (B, C, H, W), sigma (B,)) -> x_hat`` as a prior whose score is (D - x) / sigma^2.

    D sees images in data space with Gaussian noise of standard deviation sigma (data units). The
    prior is resolution-free by default (``image_shape`` (C, None, None)); every solver accepts it.
    """
    if not callable(denoise_fn):
        raise InputError(f"denoise_fn: expected a callable D(x, sigma), got {type(denoise_fn).__name__}")
    return ScorePrior(sde, DenoiserScore(denoise_fn, sde), image_shape, name=name)


def bm3d_available() -> bool:
    """True when the optional ``bm3d`` package is installed."""
    import importlib.util

    return importlib.util.find_spec("bm3d") is not None


def bm3d_denoiser(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """BM3D (Dabov et al. 2007) of images (B, C, H, W) with noise levels sigma ((B,) or a float, data units).

    One channel: ``bm3d.bm3d``; three: ``bm3d.bm3d_rgb`` (opponent colour space). Runs on the CPU
    (the package is NumPy); the result comes back on x's device and dtype.
    """
    try:
        import bm3d
    except ImportError:
        raise InputError("bm3d: BM3D needs the optional bm3d package: pip install 'scoremed[bm3d]'") from None
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputError(f"x: BM3D denoises (B, 1 or 3, H, W) images, got shape {tuple(x.shape)}")
    sigmas = torch.as_tensor(sigma, dtype=torch.float64).expand(x.shape[0]).tolist()
    images = x.detach().cpu().double().numpy()
    out = []
    for image, s in zip(images, sigmas):
        if image.shape[0] == 3:
            out.append(bm3d.bm3d_rgb(image.transpose(1, 2, 0), s).transpose(2, 0, 1))
        else:
            out.append(bm3d.bm3d(image[0], s)[None])
    return torch.from_numpy(np.stack(out)).to(x.device, x.dtype)

"""PnP-BM3D: plug-and-play ADMM with BM3D as the prior step and a decreasing noise level (Venkatakrishnan
et al. 2013; the schedule as in DPIR, Zhang et al. 2021), a classical baseline of the tasks whose images are
real (MRI, CT, inpainting).

It minimises  1/2 ||A x - y||^2 / ||A||^2 + weight * R(x),  R the prior implicit in the denoiser D, by
scaled-form ADMM with penalty weight / sigma_k^2 at iteration k = 1 .. K, the noise levels sigma_k
decreasing geometrically from ``sigma_start`` to ``sigma_end`` (data units: images in [0, 1]):

    x = argmin_x 1/2 ||A x - y||^2 / ||A||^2 + weight / (2 sigma_k^2) ||x - (z - u)||^2    data step
    z = D(x + u, sigma_k)                                                              prior step (BM3D)
    u = u + x - z

The data step is the operator's exact ``prox_l2(v, y, rho_k)``, v = z - u, rho_k = weight ||A||^2 /
sigma_k^2, where it has one (masks, single-coil MRI: ``has_prox_l2``), else a few conjugate-gradient
iterations on the same normal equations (I + A^H A / rho_k) x = v + A^H y / rho_k started at v
(:class:`scoremed.sampling.conditioning.DDSStep`, using only ``forward`` and ``adjoint``); ``weight``
much below sigma_k^2 makes it nearly a projection onto the (noiseless) data. x and z start at ``x0``
(``start``: the operator's pseudo-inverse, or the task's strongest classical reconstruction), u at 0;
the last data step's x is returned (of the ADMM pair, the one closer to the measurement).
Dividing the data term by ||A||^2 makes ``weight`` comparable between operators, as for
:func:`scoremed.tasks.classical.tv_pdhg`.

Images (B, C, H, W) with C = 1 (``bm3d.bm3d``) or 3 (``bm3d.bm3d_rgb``); the data step runs on y's
device, BM3D on the CPU (the package is NumPy): one round trip per iteration. BM3D takes about 0.6 s per
call up to 64 x 64, 3 s at 256 x 256 and 12 s at 512 x 512 on one core (RGB: 3x), so a reconstruction
costs about ``iterations`` times that per image. BM3D is the optional ``bm3d`` package
(``pip install 'scoremed[bm3d]'``); without it :func:`pnp_bm3d` is an InputError and the comparison
rows skip it with a note.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from scoremed.errors import InputError, check_int, check_number
from scoremed.tasks.base import Baseline

#: parameters before tuning (each task overrides some; ``scoremed tune --classical`` searches its grid)
UNTUNED = {"start": "direct", "sigma_start": 0.1, "sigma_end": 0.01, "iterations": 10, "weight": 1e-3,
           "cg_iterations": 10}
#: where the iterations start: the pseudo-inverse, or the strongest classical baseline's result
STARTS = ("direct", "classical")


def sigma_schedule(sigma_start: float, sigma_end: float, iterations: int) -> list[float]:
    """``iterations`` noise levels from ``sigma_start`` to ``sigma_end``, evenly spaced on a log scale."""
    iterations = check_int(iterations, "iterations", 1)
    start = check_number(sigma_start, "sigma_start", 1e-6, 10.0)
    end = check_number(sigma_end, "sigma_end", 1e-6, start)
    if iterations == 1:
        return [start]
    ratio = math.log(end / start) / (iterations - 1)
    return [start * math.exp(ratio * k) for k in range(iterations)]


def pnp_admm(y: torch.Tensor, operator, denoiser: Callable[[torch.Tensor, float], torch.Tensor],
             sigma_start: float = 0.1, sigma_end: float = 0.01, iterations: int = 10, weight: float = 1e-3,
             cg_iterations: int = 10, x0: torch.Tensor | None = None,
             callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Plug-and-play ADMM with any denoiser (module docstring): images (B, C, H, W) on y's device.

    Args:
        y: measurement (B, ...) as ``operator.forward`` returns it.
        operator: a scoremed operator (:class:`scoremed.operators.LinearOperator`) on real images.
        denoiser: ``denoiser(x (B, C, H, W), sigma) -> (B, C, H, W)`` for Gaussian noise of standard
            deviation sigma (data units).
        sigma_start, sigma_end, iterations: the noise-level schedule (:func:`sigma_schedule`); one
            denoiser call and one data step per iteration.
        weight: the prior's weight in the normalised objective; > 0.
        cg_iterations: CG iterations of each data step (operators without ``prox_l2``).
        x0: starting images (B, C, H, W); default the operator's pseudo-inverse.
        callback: ``callback(k, x)`` after iteration k (1-based) with the current images.
    """
    from scoremed.sampling.conditioning import DDSStep, as_image

    sigmas = sigma_schedule(sigma_start, sigma_end, iterations)
    weight = check_number(weight, "weight", 1e-12, None)
    cg_iterations = check_int(cg_iterations, "cg_iterations", 1)
    probe = operator.adjoint(y)
    if probe.is_complex() or probe.ndim != 4:
        raise InputError(f"operator: PnP reconstructs real 2D images (B, C, H, W); the adjoint returns "
                         f"{'complex' if probe.is_complex() else 'real'} {tuple(probe.shape)}")
    scale = float(operator.norm(tuple(probe.shape[1:]), device=y.device)) ** 2
    check_number(scale, "operator norm", 1e-24, None)
    if x0 is None:
        x0 = as_image(operator.pseudo_inverse(y), probe)
    elif tuple(x0.shape) != tuple(probe.shape):
        raise InputError(f"x0: expected images of shape {tuple(probe.shape)}, got {tuple(x0.shape)}")
    z = x0.to(probe)
    u = torch.zeros_like(z)
    cg = DDSStep(operator, y, cg_iterations)
    for k, sigma in enumerate(sigmas, start=1):
        rho = weight * scale / (sigma * sigma)
        x = operator.prox_l2(z - u, y, rho) if operator.has_prox_l2 else cg.consistent(z - u, 1 / rho)
        z = denoiser(x + u, sigma)
        u = u + x - z
        if callback is not None:
            callback(k, x)
    return x


def pnp_bm3d(y: torch.Tensor, operator, start: str = "direct", sigma_start: float = 0.1, sigma_end: float = 0.01,
             iterations: int = 10, weight: float = 1e-3, cg_iterations: int = 10,
             callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """PnP-BM3D: :func:`pnp_admm` with :func:`scoremed.denoising.bm3d_denoiser`, started at the
    pseudo-inverse (``start`` "direct") or at the task's strongest classical reconstruction ("classical");
    images (B, 1 or 3, H, W) on y's device. An InputError when the optional bm3d package is missing."""
    from scoremed.denoising import bm3d_available, bm3d_denoiser

    if start not in STARTS:
        raise InputError(f"start: expected one of {list(STARTS)}, got {start!r}")
    if not bm3d_available():
        raise InputError("bm3d: PnP-BM3D needs the optional bm3d package: pip install 'scoremed[bm3d]'")
    x0 = None
    if start == "classical":
        from scoremed.tasks import classical_reconstruction

        x0 = classical_reconstruction(y, operator)
    return pnp_admm(y, operator, bm3d_denoiser, sigma_start, sigma_end, iterations, weight, cg_iterations, x0,
                    callback)


def real_images(operator) -> bool:
    """PnP-BM3D denoises real images: not for an operator on complex ones."""
    return not operator.complex_images


def baseline(grid: dict[str, list[Any]], **untuned: Any) -> Baseline:
    """The PnP-BM3D baseline of a task: its untuned parameters (:data:`UNTUNED` updated by ``untuned``)
    and the values ``scoremed tune --classical`` searches. It has a comparison row of its own (never the
    warm start) and needs the bm3d package."""
    return Baseline("pnp-bm3d", "PnP-BM3D (ADMM)", pnp_bm3d, untuned={**UNTUNED, **untuned}, grid=grid,
                    applies=real_images, requires="bm3d", own_row=True)

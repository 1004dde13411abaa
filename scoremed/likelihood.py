"""Exact likelihoods through the probability-flow ODE (Song et al. 2021, Sec. 4.3).

log p_0(x) = log p_T(z) + int_0^T div f(x_t, t) dt with f the ODE drift; the divergence
is exact (D backward passes, small images) or a Hutchinson–Skilling estimate.
"""
from __future__ import annotations

import math

import torch

from scoremed.errors import InputError
from scoremed.prior import ScorePrior
from scoremed.sampling import adaptive_options, check_prior, ode_drift
from scoremed.utils import make_generator


def _divergence_fn(drift, exact: bool, noise: torch.Tensor | None):
    """(f(x), div f(x)) at (t, x) with x (B, ...); div (B,)."""

    def exact_div(t, x):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            f = drift(t, x)
            flat = f.reshape(f.shape[0], -1)
            div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            for i in range(flat.shape[1]):
                grad = torch.autograd.grad(flat[:, i].sum(), x, retain_graph=i + 1 < flat.shape[1])[0]
                div = div + grad.reshape(x.shape[0], -1)[:, i]
        return f.detach(), div

    def hutchinson_div(t, x):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            f = drift(t, x)
            grad = torch.autograd.grad((f * noise).sum(), x)[0]
        return f.detach(), (grad * noise).flatten(1).sum(1)

    return exact_div if exact else hutchinson_div


def _check_images(x: torch.Tensor, prior: ScorePrior) -> None:
    """x must be (B, *image_shape): the prior's shape, or any size for a resolution-free prior."""
    check_prior(prior)
    fits = isinstance(x, torch.Tensor) and x.ndim == len(prior.image_shape) + 1
    if fits:
        try:
            prior.shape_for(x.shape[1:])
        except InputError:
            fits = False
    if not fits:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        want = ", ".join("any" if s is None else str(s) for s in prior.image_shape)
        raise InputError(f"x: expected a tensor of shape (B, {want}), got {shape}")
    if not torch.is_floating_point(x):
        raise InputError(f"x: expected a floating-point tensor, got {x.dtype}")
    if not torch.isfinite(x).all():
        raise InputError("x: contains NaN or Inf")


def likelihood(x: torch.Tensor, prior: ScorePrior, *, exact_trace: bool = False, estimator: str = "rademacher",
               dequantize_bits: int | None = None, rtol: float = 1e-5, atol: float = 1e-5, eps: float | None = None,
               seed: int | None = None, device=None, return_latent: bool = False):
    """Negative log-likelihood in bits per dimension, shape (B,).

    Args:
        x: (B, *image_shape) in the prior's data space (e.g. [0, 1]); any H x W for a resolution-free
            prior (the image shape is x's).
        exact_trace: exact divergence (D backward passes per evaluation; small images only).
        estimator: Hutchinson noise, "rademacher" or "gaussian" (drawn once per call).
        dequantize_bits: None -> -log p(x) / (D ln 2) for x as given (a centred model's
            2x-1 rescaling is accounted for by its Jacobian). b -> x in [0, 1] is b-bit data
            x = k / (2^b - 1); it is dequantized to y = (k + u) / 2^b with u ~ U[0, 1) and
            the result is -log p(y) / (D ln 2) + b, the ScoreSDE bits/dim convention.
        eps: lower integration time (default: the SDE's sampling eps).
        return_latent: also return the latent z at time T.
    """
    from torchdiffeq import odeint

    _check_images(x, prior)
    if estimator not in ("rademacher", "gaussian"):
        raise InputError(f"estimator: expected 'rademacher' or 'gaussian', got {estimator!r}")
    device = torch.device(device) if device is not None else prior.device
    prior.to(device)
    generator = make_generator(seed, device)
    x = x.to(device)
    dim = x[0].numel()
    offset_bits = 0.0
    if dequantize_bits is not None:
        levels = 2 ** int(dequantize_bits)
        u = torch.rand(x.shape, generator=generator, device=device, dtype=x.dtype)
        x = (torch.round(x * (levels - 1)) + u) / levels
        offset_bits = float(dequantize_bits)
    z0 = prior.to_model(x)
    noise = None
    if not exact_trace:
        noise = torch.randn(z0.shape, generator=generator, device=device, dtype=z0.dtype)
        if estimator == "rademacher":
            noise = noise.sign()
    div_fn = _divergence_fn(ode_drift(prior.sde, prior.score), exact_trace, noise)

    def augmented(t, state):
        f, div = div_fn(t, state[0])
        return f, div

    eps = prior.sde.default_eps if eps is None else eps
    times = torch.tensor([eps, prior.sde.T], device=device, dtype=torch.float64)
    init = (z0, torch.zeros(z0.shape[0], device=device, dtype=z0.dtype))
    z_path, div_path = odeint(augmented, init, times, rtol=rtol, atol=atol, method="dopri5",
                              options=adaptive_options("dopri5", times))
    z, delta_logp = z_path[-1], div_path[-1]
    logp = prior.sde.prior_logp(z) + delta_logp + dim * math.log(prior.model_scale)
    bpd = -logp / (dim * math.log(2)) + offset_bits
    return (bpd, z) if return_latent else bpd


@torch.no_grad()
def encode(x: torch.Tensor, prior: ScorePrior, rtol: float = 1e-5, atol: float = 1e-5, eps: float | None = None):
    """Latent z at time T of images x (data space) along the probability-flow ODE."""
    from torchdiffeq import odeint

    _check_images(x, prior)
    eps = prior.sde.default_eps if eps is None else eps
    z0 = prior.to_model(x.to(prior.device))
    times = torch.tensor([eps, prior.sde.T], device=z0.device, dtype=torch.float64)
    return odeint(ode_drift(prior.sde, prior.score), z0, times, rtol=rtol, atol=atol,
                  options=adaptive_options("dopri5", times))[-1]


@torch.no_grad()
def decode(z: torch.Tensor, prior: ScorePrior, rtol: float = 1e-5, atol: float = 1e-5, eps: float | None = None):
    """Images (data space) from latents z at time T: the inverse of :func:`encode`."""
    from torchdiffeq import odeint

    eps = prior.sde.default_eps if eps is None else eps
    times = torch.tensor([prior.sde.T, eps], device=z.device, dtype=torch.float64)
    return prior.from_model(odeint(ode_drift(prior.sde, prior.score), z, times, rtol=rtol, atol=atol,
                                      options=adaptive_options("dopri5", times))[-1])

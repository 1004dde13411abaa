"""Samplers as functions: predictor–corrector and probability-flow ODE, one loop for all tasks.

Both return a :class:`SamplingResult` (samples in the SDE's model space plus the number
of score evaluations). Conditional sampling passes a ``measurement_step(x, x_mean, t) ->
(x, x_mean)`` that the PC loop applies after every predictor and corrector update.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from scoremed.errors import InputError, SamplingDiverged, check_device, check_int, check_number, check_seed
from scoremed.predictors import CORRECTORS, PREDICTORS, Corrector, Predictor, pick
from scoremed.prior import ScorePrior
from scoremed.sde import SDE, ScoreFn
from scoremed.utils import make_generator

MeasurementStep = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Callback = Callable[[dict], None]


@dataclass
class SamplingResult:
    samples: torch.Tensor   #: (B, *image_shape) in model space
    nfe: int                #: number of score-function evaluations (per batch)


class CountingScore:
    """Wraps a score function and counts its calls (a Python int: no device synchronisation)."""

    def __init__(self, score_fn: ScoreFn):
        self.score_fn, self.calls = score_fn, 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.score_fn(x, t)


def time_grid(sde: SDE, eps: float, device, t_start: float | None = None) -> torch.Tensor:
    """The N decreasing times of the PC loop, from T (or t_start) down to eps; shape (N,)."""
    grid = torch.linspace(sde.T, eps, sde.N, device=device)
    return grid if t_start is None else grid[grid <= t_start + 1e-12]


@torch.no_grad()
def pc_sampler(sde: SDE, score_fn: ScoreFn, shape: tuple[int, ...], predictor: type[Predictor],
               corrector: type[Corrector], *, snr: float = 0.16, n_corrector_steps: int = 1,
               probability_flow: bool = False, eps: float | None = None, denoise: bool = True,
               measurement_step: MeasurementStep | None = None, x_init: torch.Tensor | None = None,
               t_start: float | None = None, generator: torch.Generator | None = None, device=None,
               callback: Callback | None = None, progress: bool = False) -> SamplingResult:
    """Predictor–corrector sampling of ``shape`` (batch first) with ``sde.N`` steps.

    ``x_init`` replaces the draw from p_T (e.g. a direct reconstruction perturbed to
    ``t_start``, which then shortens the schedule). Returns x_mean of the last step when
    ``denoise`` (the noise-free final update), else x.
    """
    counting = CountingScore(score_fn)
    eps = sde.default_eps if eps is None else eps
    pred = predictor(sde, counting, probability_flow, generator)
    corr = corrector(sde, counting, snr, n_corrector_steps, generator)
    x = sde.prior_sampling(shape, generator, device) if x_init is None else x_init
    x_mean = x
    timesteps = time_grid(sde, eps, x.device, t_start)
    for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="sampling", leave=False)):
        vec_t = t.expand(x.shape[0])
        x, x_mean = corr.update(x, vec_t)
        if measurement_step is not None:
            x, x_mean = measurement_step(x, x_mean, vec_t)
        x, x_mean = pred.update(x, vec_t)
        if measurement_step is not None:
            x, x_mean = measurement_step(x, x_mean, vec_t)
        if callback is not None:
            callback({"step": i, "t": t, "x": x, "x_mean": x_mean, "nfe": counting.calls})
    return SamplingResult(x_mean if denoise else x, counting.calls)


class DivergenceWatch:
    """A PC-loop callback that records the first step whose iterate is non-finite.

    It keeps the step on the device (no host synchronisation per step); call
    :meth:`raise_if_diverged` once after the loop.
    """

    def __init__(self, then: Callback | None = None):
        self.flags: list[torch.Tensor] = []
        self.then = then

    def __call__(self, info: dict) -> None:
        # one device-side flag per step; no host -> device copy of the step number (that would
        # synchronise the stream every step and break CUDA-graph capture)
        self.flags.append(~torch.isfinite(info["x"]).all())
        if self.then is not None:
            self.then(info)

    @property
    def first_bad(self) -> int | None:
        """The first step with a non-finite iterate, or None (reads the flags: one synchronisation)."""
        if not self.flags:
            return None
        bad = torch.stack(self.flags)
        return int(bad.byte().argmax()) if bool(bad.any()) else None

    def raise_if_diverged(self, total: int, hint: str = "") -> None:
        """Raise :class:`SamplingDiverged` naming the first bad step of ``total``."""
        step = self.first_bad
        if step is not None:
            raise SamplingDiverged(f"sampling diverged: non-finite values at step {step} of {total}"
                                   + (f" ({hint})" if hint else ""), step=step)


def check_prior(prior: object, name: str = "prior") -> ScorePrior:
    """Raise InputError unless ``prior`` is a :class:`ScorePrior`."""
    if not isinstance(prior, ScorePrior):
        path_like = isinstance(prior, (str, bytes)) or hasattr(prior, "__fspath__")
        hint = "; load one with scoremed.load_prior(...)" if path_like else ""
        raise InputError(f"{name}: expected a scoremed.ScorePrior, got {type(prior).__name__}{hint}")
    return prior


def ode_drift(sde: SDE, score_fn: ScoreFn) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """f(t, x) of the probability-flow ODE in torchdiffeq's argument order (t a scalar tensor)."""
    rsde = sde.reverse(score_fn, probability_flow=True)
    return lambda t, x: rsde.sde(x, t.expand(x.shape[0]).to(x.dtype))[0]


def adaptive_options(method: str, times: torch.Tensor) -> dict:
    """torchdiffeq options that make adaptive steps land exactly on ``times``.

    Without them a step may overshoot the end time and evaluate the drift at t < 0, where
    the VP marginal std is undefined.
    """
    return {"step_t": times} if method in ("dopri5", "dopri8", "bosh3", "adaptive_heun", "fehlberg2") else {}


@torch.no_grad()
def ode_sampler(sde: SDE, score_fn: ScoreFn, shape: tuple[int, ...], *, rtol: float = 1e-5, atol: float = 1e-5,
                method: str = "dopri5", eps: float | None = None, denoise: bool = True,
                x_init: torch.Tensor | None = None, generator: torch.Generator | None = None,
                device=None) -> SamplingResult:
    """Integrate the probability-flow ODE from T to eps with torchdiffeq (adaptive by default).

    With ``denoise``, one final reverse-diffusion step at eps returns its noise-free mean.
    """
    from torchdiffeq import odeint

    counting = CountingScore(score_fn)
    eps = sde.default_eps if eps is None else eps
    x = sde.prior_sampling(shape, generator, device) if x_init is None else x_init
    times = torch.tensor([sde.T, eps], device=x.device, dtype=torch.float64)
    drift = ode_drift(sde, counting)

    def guarded(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # adaptive solvers synchronise on every step anyway; stop at the first non-finite drift
        out = drift(t, x)
        if not bool(torch.isfinite(out).all()):
            raise SamplingDiverged(f"sampling diverged: the probability-flow ODE drift is non-finite at "
                                   f"t={float(t):.4g} (score evaluation {counting.calls})", step=counting.calls)
        return out

    try:
        x = odeint(guarded, x, times, rtol=rtol, atol=atol, method=method,
                   options=adaptive_options(method, times))[-1]
    except AssertionError as exc:  # torchdiffeq's step-size control gives up ("underflow in dt")
        raise SamplingDiverged(f"sampling diverged: the ODE solver's step size collapsed ({exc}) after "
                               f"{counting.calls} score evaluations", step=counting.calls) from None
    if denoise:
        pred = PREDICTORS["reverse_diffusion"](sde, counting, False, generator)
        x = pred.update(x, torch.full((x.shape[0],), eps, device=x.device, dtype=x.dtype))[1]
    return SamplingResult(x, counting.calls)


def sample(prior: ScorePrior, n: int = 1, method: str = "pc", steps: int | None = None,
           predictor: str = "reverse_diffusion", corrector: str = "langevin", snr: float = 0.16,
           n_corrector_steps: int = 1, rtol: float = 1e-5, atol: float = 1e-5, denoise: bool = True,
           seed: int | None = None, device=None, batch_size: int | None = None, progress: bool = False,
           callback: Callback | None = None) -> torch.Tensor:
    """Draw ``n`` unconditional samples (n, *image_shape) in the prior's data space.

    ``method`` is "pc" (``steps`` predictor steps, default the SDE's N) or "ode"
    (adaptive probability-flow ODE). ``callback`` receives a dict per PC step and, once
    per batch, {"nfe": ...} with the number of score evaluations.
    """
    check_prior(prior)
    n = check_int(n, "n", 1)
    if method not in ("pc", "ode"):
        raise InputError(f"method: expected 'pc' or 'ode', got {method!r}")
    steps = None if steps is None else check_int(steps, "steps", 1)
    batch_size = n if batch_size is None else check_int(batch_size, "batch_size", 1)
    snr = check_number(snr, "snr", 0.0)
    n_corrector_steps = check_int(n_corrector_steps, "n_corrector_steps", 0)
    rtol, atol = check_number(rtol, "rtol", 0.0), check_number(atol, "atol", 0.0)
    seed = check_seed(seed)
    device = check_device(device) or prior.device
    prior.to(device)
    sde = prior.sde if steps is None else prior.sde.with_steps(steps)
    generator = make_generator(seed, device)
    out = []
    for start in range(0, n, batch_size):
        shape = (min(batch_size, n - start), *prior.image_shape)
        if method == "pc":
            watch = DivergenceWatch(then=callback)
            result = pc_sampler(sde, prior.score, shape, pick(PREDICTORS, predictor, "predictor"),
                                pick(CORRECTORS, corrector, "corrector"), snr=snr,
                                n_corrector_steps=n_corrector_steps, denoise=denoise, generator=generator,
                                device=device, callback=watch, progress=progress)
            watch.raise_if_diverged(sde.N, f"predictor={predictor}, corrector={corrector}, snr={snr}")
        else:
            result = ode_sampler(sde, prior.score, shape, rtol=rtol, atol=atol, denoise=denoise,
                                 generator=generator, device=device)
        if not bool(torch.isfinite(result.samples).all()):
            raise SamplingDiverged(f"sampling diverged: the {method} sampler returned non-finite values "
                                   f"after {result.nfe} score evaluations")
        if callback is not None:
            callback({"nfe": result.nfe})
        out.append(prior.from_model(result.samples))
    return torch.cat(out)

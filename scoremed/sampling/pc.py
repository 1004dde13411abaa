"""The predictor–corrector loop: one loop for unconditional and every conditional sampler.

Returns a :class:`SamplingResult` (samples in the SDE's model space plus the number of score
evaluations). Conditional sampling passes a :class:`~scoremed.sampling.conditioning.Conditioning`
(or a plain ``step(x, x_mean, t) -> (x, x_mean)``) whose hooks the loop applies: a guided
score, a refined Tweedie estimate inside DDIM-type predictors, a measurement step after every
predictor and corrector update, and a final step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from scoremed.errors import InputError, SamplingDiverged
from scoremed.sampling.conditioning import Conditioning, as_conditioning
from scoremed.sampling.correctors import Corrector
from scoremed.sampling.predictors import Predictor
from scoremed.sampling.schedules import time_grid
from scoremed.sde import SDE, ScoreFn

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


@torch.no_grad()
def pc_sampler(sde: SDE, score_fn: ScoreFn, shape: tuple[int, ...], predictor: type[Predictor],
               corrector: type[Corrector], *, snr: float = 0.16, n_corrector_steps: int = 1,
               probability_flow: bool = False, eps: float | None = None, denoise: bool = True,
               conditioning: Conditioning | Callable | None = None, x_init: torch.Tensor | None = None,
               t_start: float | None = None, generator: torch.Generator | None = None, device=None,
               callback: Callback | None = None, progress: bool = False) -> SamplingResult:
    """Predictor–corrector sampling of ``shape`` (batch first) on the grid of ``sde.N`` steps.

    ``predictor`` / ``corrector`` are classes (or factories) called as
    ``predictor(sde, score, probability_flow, generator)`` and
    ``corrector(sde, score, snr, n_corrector_steps, generator)``. ``x_init`` replaces the draw
    from p_T (e.g. a direct reconstruction perturbed to ``t_start``, which then shortens the
    schedule). Returns x_mean of the last step when ``denoise`` (the noise-free final update),
    else x; the conditioning's final step is applied to either.
    """
    conditioning = as_conditioning(conditioning)
    counting = CountingScore(conditioning.guide(score_fn))
    eps = sde.default_eps if eps is None else eps
    pred = predictor(sde, counting, probability_flow, generator)
    corr = corrector(sde, counting, snr, n_corrector_steps, generator)
    if conditioning.refines:
        if not pred.uses_denoised:
            raise InputError(f"predictor: this conditioning refines the Tweedie estimate and needs a predictor "
                             f"that steps through it ('ddim' or 'dpm2m'), got {type(pred).__name__}")
        pred.refine = conditioning.refine
    x = sde.prior_sampling(shape, generator, device) if x_init is None else x_init
    x_mean = x
    timesteps = time_grid(sde, eps, x.device, t_start)
    for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="sampling", leave=False)):
        vec_t = t.expand(x.shape[0])
        x, x_mean = corr.update(x, vec_t)
        x, x_mean = conditioning.step(x, x_mean, vec_t)
        x, x_mean = pred.update(x, vec_t)
        x, x_mean = conditioning.step(x, x_mean, vec_t)
        if callback is not None:
            callback({"step": i, "t": t, "x": x, "x_mean": x_mean, "nfe": counting.calls})
    return SamplingResult(conditioning.finish(x_mean if denoise else x), counting.calls)


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

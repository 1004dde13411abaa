"""Unconditional sampling from a prior: ``scoremed.sample``."""
from __future__ import annotations

import torch

from scoremed.errors import InputError, SamplingDiverged, check_device, check_int, check_number, check_seed
from scoremed.prior import ScorePrior
from scoremed.sampling.correctors import CORRECTORS
from scoremed.sampling.ode import ode_sampler
from scoremed.sampling.pc import Callback, DivergenceWatch, pc_sampler
from scoremed.sampling.predictors import PREDICTORS, pick
from scoremed.utils import make_generator


def check_prior(prior: object, name: str = "prior") -> ScorePrior:
    """Raise InputError unless ``prior`` is a :class:`ScorePrior`."""
    if not isinstance(prior, ScorePrior):
        path_like = isinstance(prior, (str, bytes)) or hasattr(prior, "__fspath__")
        hint = "; load one with scoremed.load_prior(...)" if path_like else ""
        raise InputError(f"{name}: expected a scoremed.ScorePrior, got {type(prior).__name__}{hint}")
    return prior


def sample(prior: ScorePrior, n: int = 1, method: str = "pc", steps: int | None = None,
           predictor: str = "reverse_diffusion", corrector: str = "langevin", snr: float = 0.16,
           n_corrector_steps: int = 1, rtol: float = 1e-5, atol: float = 1e-5, denoise: bool = True,
           seed: int | None = None, device=None, batch_size: int | None = None, progress: bool = False,
           callback: Callback | None = None, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Draw ``n`` unconditional samples (n, C, H, W) in the prior's data space.

    ``shape`` (C, H, W) or (H, W) is the image size, needed only for a resolution-free prior.

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
    image_shape = prior.shape_for(shape)
    device = check_device(device) or prior.device
    prior.to(device)
    sde = prior.sde if steps is None else prior.sde.with_steps(steps)
    generator = make_generator(seed, device)
    if seed is not None and callable(getattr(prior.score_fn, "reseed", None)):
        prior.score_fn.reseed(seed)   # patch priors: reproducible tile offsets and background noise
    out = []
    for start in range(0, n, batch_size):
        batch_shape = (min(batch_size, n - start), *image_shape)
        if method == "pc":
            watch = DivergenceWatch(then=callback)
            result = pc_sampler(sde, prior.score, batch_shape, pick(PREDICTORS, predictor, "predictor"),
                                pick(CORRECTORS, corrector, "corrector"), snr=snr,
                                n_corrector_steps=n_corrector_steps, denoise=denoise, generator=generator,
                                device=device, callback=watch, progress=progress)
            watch.raise_if_diverged(sde.N, f"predictor={predictor}, corrector={corrector}, snr={snr}")
        else:
            result = ode_sampler(sde, prior.score, batch_shape, rtol=rtol, atol=atol, denoise=denoise,
                                 generator=generator, device=device)
        if not bool(torch.isfinite(result.samples).all()):
            raise SamplingDiverged(f"sampling diverged: the {method} sampler returned non-finite values "
                                   f"after {result.nfe} score evaluations")
        if callback is not None:
            callback({"nfe": result.nfe})
        out.append(prior.from_model(result.samples))
    return torch.cat(out)

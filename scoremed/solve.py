"""scoremed.solve / sample_posterior: conditional reverse-SDE reconstruction for any operator.

One PC loop (:func:`scoremed.sampling.pc_sampler`) serves every task; the method (a registry entry of
:mod:`scoremed.sampling.methods`) only builds the conditioning: a measurement step (``consistency``,
``projection``), a guided score (``dps``), conjugate-gradient data consistency on the Tweedie estimate
inside DDIM steps (``dds``) or an exact proximal data step on it (``diffpir``). The reverse process
starts from noise at T or, warm (``start``), from the direct or the tuned classical reconstruction
perturbed to ``t_start`` (Chung et al. 2022, CCDF): fewer steps, and the prior only has to add what the
classical method misses. Settings: :mod:`scoremed.settings`.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any

import torch

from scoremed.errors import InputError, check_device, check_int, check_seed
from scoremed.networks import fast_score
from scoremed.operators import as_operator
from scoremed.prior import ScorePrior
from scoremed.sampling import CORRECTORS, PREDICTORS, DivergenceWatch, check_prior, pc_sampler, pick, truncated
from scoremed.sampling.conditioning import as_image
from scoremed.sampling.methods import Problem, SolveSettings, get_method
from scoremed.settings import with_overrides
from scoremed.tasks import default_prior_name
from scoremed.utils import append_dims, make_generator

log = logging.getLogger("scoremed")



def schedule(sde, settings: SolveSettings):
    """The discretisation of a solve: ``steps`` steps from T, or (start="direct" / "classical") about ``steps``
    steps from t_start: the full grid is refined so that its part at or below t_start has
    ``steps`` points (see :func:`scoremed.sampling.time_grid`)."""
    return truncated(sde, int(settings.steps), sde.T if settings.start == "noise" else settings.t_start)


def start_estimate(start: str, operator, y: torch.Tensor, y_model: torch.Tensor,
                   prior: ScorePrior) -> torch.Tensor | None:
    """The reconstruction a start="direct" / "classical" run perturbs, model space (B, *image_shape), from
    the measurement y (data space) or y_model (model space); None for start="noise".

    "direct": the operator's pseudo-inverse (generic operators: the scaled adjoint); "classical": the
    strongest tuned classical baseline of the operator's task (e.g. TV), CCDF-style (Chung et al. 2022):
    the reverse process then only has to remove that estimate's remaining error.
    """
    if start == "noise":
        return None
    if start == "classical":
        from scoremed.tasks import classical_reconstruction

        try:
            x0 = prior.to_model(classical_reconstruction(y, operator))
        except InputError as exc:
            raise InputError(f"start: 'classical' needs an operator of a scoremed task with a classical baseline "
                             f"({exc}); use start='direct'") from None
    else:
        x0 = operator.pseudo_inverse(y_model)
    x0 = as_image(x0, torch.empty((), device=y.device)).to(torch.float32)
    return x0.expand(y.shape[0], *prior.image_shape)


def resolve_start(settings: SolveSettings, operator, given: bool = False) -> SolveSettings:
    """``settings`` with start="auto" made concrete: "classical" if a start image is ``given`` or the
    operator's task has a classical baseline (scoremed's MRI, CT, inpainting and colorization
    operators), else "noise"."""
    if settings.start != "auto":
        return settings
    from scoremed.tasks import image_size, task_for

    start = "classical"
    if not given:
        try:
            task_for(operator).strongest(operator, image_size(operator))
        except InputError:
            start = "noise"
    return dataclasses.replace(settings, start=start)


def checked_start_image(image: object, settings: SolveSettings, shape: tuple[int, ...]) -> torch.Tensor:
    """``start_image`` as float32 after checking it fits the start and the shape (B, *image_shape)."""
    if settings.start != "classical":
        raise InputError(f"start_image: needs start='classical' or 'auto', got start={settings.start!r}")
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        got = f"dtype {image.dtype}" if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"start_image: expected a real floating-point tensor, got {got}")
    if tuple(image.shape) != tuple(shape):
        raise InputError(f"start_image: expected shape {tuple(shape)} (one image per measurement), "
                         f"got {tuple(image.shape)}")
    if not bool(torch.isfinite(image).all()):
        raise InputError("start_image: contains NaN or Inf")
    return image.to(torch.float32)


def perturbed_start(sde, x0: torch.Tensor, t_start: float, generator: torch.Generator | None) -> torch.Tensor:
    """x ~ p_{t_start}(x | x_0): the estimate x0 (B, C, H, W) perturbed with the SDE's marginal
    (a(t) x0 + std(t) z, model space)."""
    t = torch.full((x0.shape[0],), float(t_start), device=x0.device)
    mean, std = sde.marginal_prob(x0, t)
    return mean + append_dims(std, x0.ndim) * torch.randn(x0.shape, generator=generator, device=x0.device)


def default_prior(operator, y: torch.Tensor) -> ScorePrior:
    """The shipped prior for the operator's kind (inpainting: by channel count); logs the choice."""
    from scoremed.priors import load_prior

    kind = operator.kind
    name = default_prior_name(kind, y.shape[1])
    if name is None:
        raise InputError(f"prior: no shipped prior for operator kind {kind!r}; pass prior=scoremed.load_prior(...)")
    log.info("solve: using the shipped prior '%s' for a %s operator", name, kind or type(operator).__name__)
    return load_prior(name)


def at_operator_size(prior: ScorePrior, operator, y: torch.Tensor) -> ScorePrior:
    """``prior`` if it is fixed-size; else the resolution-free prior bound to the operator's image size
    (C, H, W) as a fixed-size ScorePrior (same network). Sizes the operator leaves free (e.g.
    Grayscale's H, W) are taken from y (B, ...) at the same position; :func:`check_fit` then checks
    that such images give measurements shaped like y."""
    if not prior.resolution_free:
        return prior
    own = tuple(operator.image_shape)
    sizes = tuple(s if s is not None else (y.shape[i] if i < y.ndim else None) for i, s in enumerate(own, 1))[1:]
    try:
        if None in sizes:
            raise InputError(f"the operator leaves the image size free ({own}) and y {tuple(y.shape)} does not tell it")
        return dataclasses.replace(prior, image_shape=prior.shape_for((prior.channels, *sizes)))
    except InputError as exc:
        raise InputError(f"operator: cannot size the images of resolution-free prior '{prior.name}' from the "
                         f"operator ({str(exc).removeprefix('shape: ')}); wrap it with "
                         "scoremed.operators.as_operator(operator, image_shape=(C, H, W))") from None


def check_fit(prior: ScorePrior, operator, y: torch.Tensor) -> None:
    """Raise InputError unless the prior's images are what the operator expects."""
    probe = torch.zeros((1, *prior.image_shape), dtype=torch.float32, device=y.device)
    try:
        operator.check_image(probe, name="prior image")
    except InputError as exc:
        raise InputError(f"prior: '{prior.name}' works on images {prior.image_shape}, which does not fit the "
                         f"operator ({exc}); use a prior trained at the operator's resolution and channels") from None
    measured = operator(probe)
    if tuple(measured.shape[1:]) != tuple(y.shape[1:]):
        raise InputError(f"y: expected a measurement of shape (B, {', '.join(map(str, measured.shape[1:]))}) for "
                         f"prior '{prior.name}' images {prior.image_shape}, got {tuple(y.shape)}")


#: a measurement whose norm exceeds this many times the largest norm of images in [0, 1] is refused
SCALE_SLACK = 2.0


def check_scale(prior: ScorePrior, operator, y: torch.Tensor) -> None:
    """For priors whose data live in [0, 1], refuse measurements far larger than A x can be.

    ||A x|| <= ||A|| ||x|| <= ||A|| sqrt(D) for images x in [0, 1]^D; y above SCALE_SLACK times
    that bound was not measured from such images (wrong units, unscaled k-space, HU values) and
    would give a confident but wrong reconstruction. Priors without that convention (custom
    score functions) are not checked.
    """
    if not str(prior.metadata.get("intensity", "")).startswith("data in [0, 1]"):
        return
    try:
        norm = operator.norm(prior.image_shape, device=y.device)  # power iteration, cached on the operator
    except NotImplementedError:
        return
    bound = norm * float(torch.Size(prior.image_shape).numel()) ** 0.5
    norms = torch.linalg.vector_norm(y.reshape(y.shape[0], -1), dim=1)
    worst = int(norms.argmax())
    if float(norms[worst]) > SCALE_SLACK * bound:
        raise InputError(f"y: measurement {worst} has norm {float(norms[worst]):.4g}, but images with intensities in "
                         f"[0, 1] (the convention of prior '{prior.name}') give at most {bound:.4g} with this "
                         "operator; rescale the measurement to the prior's intensity range")


def _model_measurement(y: torch.Tensor, operator, prior: ScorePrior) -> torch.Tensor:
    """y of data-space images -> y of model-space images (model = scale * x + shift, A linear)."""
    if not prior.centered:
        return y
    ones = torch.ones((1, *prior.image_shape), device=y.device)
    return prior.model_scale * y - operator(ones)


def sample_posterior(y: torch.Tensor, operator, n: int = 1, prior: ScorePrior | None = None,
                     settings: SolveSettings | None = None, *, seed: int | None = None, device=None,
                     progress: bool = True, batch_size: int | None = None, start_image: torch.Tensor | None = None,
                     **overrides: Any) -> torch.Tensor:
    """``n`` posterior samples given measurement ``y``; shape (n, B, *image_shape), data space, where
    image_shape is the prior's, or the operator's image size for a resolution-free prior.

    Args:
        y: measurement (B, ...) as ``operator.forward`` returns it.
        operator: a scoremed operator, a linear ``nn.Module`` / callable (adjoint by autograd) or a
            deepinv ``LinearPhysics`` (its ``A`` / ``A_adjoint``); see ``scoremed.operators.as_operator``.
        prior: a :class:`ScorePrior`; None -> the shipped default for the operator's kind.
        settings: the method and all its settings (``scoremed.settings_for("dds", steps=50)``), used as
            they are; None: the prior's recommended method with its stored defaults.
        overrides: settings by name, on top of ``settings`` or of the prior's stored defaults: ``method``
            (``scoremed.METHODS``: "consistency", "projection", "dps", "dds", "diffpir"), ``steps``,
            ``predictor``, ``corrector``, ``snr``, the method's own settings (lam, zeta, guard, eta,
            cg_iterations, gamma, prox_lambda, sigma_y: see :mod:`scoremed.sampling.methods`), the start
            (``start`` "noise" | "direct" | "classical" | "auto" and ``t_start``: start from noise at T, or
            from the operator's pseudo-inverse or the task's strongest tuned classical reconstruction
            perturbed to t_start, Chung et al. 2022; "auto" = classical where the operator's task has a
            classical baseline) and the speed options (``precision`` "fp32" | "bf16" | "auto",
            ``channels_last``, ``compile``). None values are ignored.
        seed: seeds an explicit generator: same seed, same device -> same result.
        batch_size: images per sampler call (default: all n * B at once).
        start_image: a reconstruction (B, *image_shape), data space, to start from instead of computing
            one (e.g. a TV result you already have); makes start="auto" a classical start for any
            operator; not with start="noise" / "direct".

    Raises:
        InputError: any invalid argument (measurement shape, dtype, device, NaN/Inf, a measurement too
            large for the prior's intensity range, a prior that does not fit the operator, settings out
            of range or not of the method), naming the argument.
        SamplingDiverged: the sampler produced NaN/Inf, or DPS's estimate diverged; names the step.
    """
    n = check_int(n, "n", 1)
    batch_size = None if batch_size is None else check_int(batch_size, "batch_size", 1)
    seed = check_seed(seed)
    if prior is not None:
        check_prior(prior)
    # scoremed operators as they are; modules, callables and deepinv physics wrapped (autograd adjoint if needed)
    operator = as_operator(operator, None if prior is None or prior.resolution_free else prior.image_shape)
    operator.check_measurement(y, "y")
    if y.shape[0] == 0:
        raise InputError(f"y: expected at least one measurement in the batch, got shape {tuple(y.shape)}")
    device = check_device(device) or (prior.device if prior is not None else y.device)
    if prior is None:
        prior = default_prior(operator, y)
    prior = at_operator_size(prior, operator, y)   # resolution-free: sample at the operator's image size
    prior.to(device)
    operator = operator.to(device)
    y = y.to(device)
    check_fit(prior, operator, y)
    check_scale(prior, operator, y)
    settings = resolve_start(with_overrides(settings, prior, **overrides), operator, given=start_image is not None)
    if start_image is not None:
        start_image = checked_start_image(start_image, settings, (y.shape[0], *prior.image_shape)).to(device)
    y_model = _model_measurement(y, operator, prior)
    generator = make_generator(seed, device)
    if seed is not None and callable(getattr(prior.score_fn, "reseed", None)):
        prior.score_fn.reseed(seed)   # patch priors: reproducible tile offsets and background noise
    sde = schedule(prior.sde, settings)
    batch = y.shape[0]
    y_all = y_model.repeat(n, *([1] * (y.ndim - 1)))
    x0_all = None
    if settings.start != "noise" and settings.t_start < sde.T:
        x0_all = (prior.to_model(start_image) if start_image is not None
                  else start_estimate(settings.start, operator, y, y_model, prior)).repeat(n, 1, 1, 1)
    chunk = batch_size or y_all.shape[0]
    outputs = []
    for first in range(0, y_all.shape[0], chunk):
        x0_chunk = None if x0_all is None else x0_all[first:first + chunk]
        problem = Problem(sde, operator, y_all[first:first + chunk], tuple(prior.image_shape), generator)
        outputs.append(_reconstruct(prior, problem, x0_chunk, settings, device, progress))
    samples = prior.from_model(torch.cat(outputs))
    # outside the operator's field of view (CT: the disc the rays cross) the data say nothing: zero
    # there, as the direct reconstruction has it, not whatever the prior imagined
    samples = operator.support(samples)
    return samples.reshape(n, batch, *samples.shape[1:])


def _reconstruct(prior: ScorePrior, problem: Problem, x0: torch.Tensor | None, settings: SolveSettings, device,
                 progress: bool) -> torch.Tensor:
    """One conditional PC run for the batch ``problem.y`` (model space), from noise (x0 None) or from the
    estimate x0 (model space) perturbed to t_start; returns model-space images."""
    shape = (problem.y.shape[0], *problem.image_shape)
    score_fn = fast_score(prior.score_fn, device, settings.precision, settings.channels_last, settings.compile)
    x_init, t_start = None, None
    if x0 is not None:
        x_init = perturbed_start(problem.sde, x0, settings.t_start, problem.generator)
        t_start = settings.t_start
    plan = get_method(settings.method).build(settings, problem)
    predictor = pick(PREDICTORS, settings.predictor, "predictor")
    if plan.predictor_options:
        predictor = functools.partial(predictor, **plan.predictor_options)
    divergence = DivergenceWatch()
    result = pc_sampler(problem.sde, score_fn, shape, predictor, pick(CORRECTORS, settings.corrector, "corrector"),
                        snr=float(settings.snr), n_corrector_steps=settings.n_corrector_steps,
                        conditioning=plan.conditioning, x_init=x_init, t_start=t_start, generator=problem.generator,
                        device=device, callback=divergence, progress=progress)
    divergence.raise_if_diverged(settings.steps, f"{settings}; lower snr or zeta, or raise steps")
    if plan.after is not None:
        plan.after()
    return result.samples


def solve(y: torch.Tensor, operator, prior: ScorePrior | None = None, n_samples: int = 1,
          settings: SolveSettings | None = None, **options: Any) -> torch.Tensor:
    """Reconstruct images (B, *image_shape) from measurement ``y``: the posterior mean of
    ``n_samples`` conditional samples (one sample when n_samples = 1).

    ``options``: the keyword arguments of :func:`sample_posterior` (``seed``, ``device``, ``progress``,
    ``batch_size``, ``start_image``) and settings by name (``method``, ``steps``, ...).
    ``scoremed.solve(y, op, method="dds", steps=50)`` is the fast CG data-consistency solver.
    Raises as :func:`sample_posterior`.
    """
    return sample_posterior(y, operator, n_samples, prior=prior, settings=settings, **options).mean(0)

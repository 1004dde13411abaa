"""Direct, classical and scoremed reconstructions of one measurement, side by side, with metrics."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from scoremed.apps.metrics import mean_metrics
from scoremed.calibration import calibrated_std
from scoremed.prior import ScorePrior
from scoremed.sampling.methods import SolveSettings
from scoremed.settings import with_overrides
from scoremed.solve import resolve_start, sample_posterior
from scoremed.tasks import classical_name, classical_reconstruction, own_row_baselines


@dataclass
class MethodResult:
    label: str
    image: torch.Tensor                      # (B, C, H, W)
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def warm_start(prior: ScorePrior, operator, classical: torch.Tensor, settings: SolveSettings | None = None,
               **overrides) -> tuple[SolveSettings, torch.Tensor | None]:
    """The run's settings with the start decided, once, here (explicit, or the prior's "auto"), and the image
    to start from: the already computed ``classical`` result (B, C, H, W) when the start is classical (so
    it is not computed again), else None. ``settings`` / ``overrides`` as :func:`scoremed.sample_posterior`."""
    settings = resolve_start(with_overrides(settings, prior, **overrides), operator)
    return settings, (classical if settings.start == "classical" else None)


def run_comparison(y: torch.Tensor, operator, prior: ScorePrior, truth: torch.Tensor | None = None,
                   n_samples: int = 1, extra_baselines: bool = False, settings: SolveSettings | None = None, *,
                   seed: int | None = None, device=None, progress: bool = True, batch_size: int | None = None,
                   **overrides) -> tuple[dict[str, MethodResult], torch.Tensor | None]:
    """Direct (pseudo-inverse), classical and scoremed (posterior mean of ``n_samples``) reconstructions of
    y (B, ...); mean PSNR / SSIM over the batch when ``truth`` (B, C, H, W) is given. ``extra_baselines``: also
    the task's baselines with a row of their own (PnP-BM3D when the bm3d package is installed; a note
    otherwise), each under its name, between classical and scoremed. ``settings`` / ``overrides``, ``seed``,
    ``device``, ``progress``, ``batch_size``: as :func:`scoremed.sample_posterior`.

    Returns the results by method name and the pixelwise posterior std (None for one sample), scaled
    by the prior's calibration for the method and start when it has one (the scoremed label says
    which). A classical warm start reuses the classical result, and scoremed's seconds include it.
    """
    direct, t_direct = _timed(lambda: operator.pseudo_inverse(y))
    classical, t_classical = _timed(lambda: classical_reconstruction(y, operator))
    extra = {}
    for baseline, params, label in own_row_baselines(operator) if extra_baselines else []:
        image, seconds = _timed(lambda baseline=baseline, params=params: baseline.run(y, operator, **params))
        extra[baseline.name] = MethodResult(label, image, seconds)
    settings, start_image = warm_start(prior, operator, classical, settings, **overrides)
    samples, t_score = _timed(lambda: sample_posterior(y, operator, n_samples, prior, settings, seed=seed,
                                                       device=device, progress=progress, batch_size=batch_size,
                                                       start_image=start_image))
    std, note = (calibrated_std(samples, prior, settings.method, settings.start_label) if n_samples > 1
                 else (None, ""))
    what = settings.method + ("" if settings.start == "noise" else f" from {settings.start_label}")
    warm = start_image is not None   # the classical result reused: its time counted as scoremed's
    results = {
        "direct": MethodResult("direct (zero-filled / FBP / masked)", direct, t_direct),
        "classical": MethodResult(classical_name(operator), classical, t_classical),
        **extra,
        "scoremed": MethodResult(f"scoremed ({what}{f'; {note}' if note else ''})", samples.mean(0),
                                 t_score + (t_classical if warm else 0.0)),
    }
    if truth is not None:
        for result in results.values():
            result.metrics = mean_metrics(truth, result.image)
    return results, std


def metrics_table(results: dict[str, MethodResult]) -> str:
    """A plain-text table: method, what it is, PSNR, SSIM, seconds."""
    rows = [f"{'method':<10} {'what':<38} {'PSNR dB':>8} {'SSIM':>7} {'seconds':>8}"]
    for name, r in results.items():
        psnr = f"{r.metrics['psnr']:.2f}" if r.metrics else "-"
        ssim = f"{r.metrics['ssim']:.4f}" if r.metrics else "-"
        rows.append(f"{name:<10} {r.label:<38} {psnr:>8} {ssim:>7} {r.seconds:>8.2f}")
    return "\n".join(rows)

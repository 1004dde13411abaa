"""Direct, classical and scoremed reconstructions of one measurement, side by side, with metrics."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from scoremed.apps.metrics import mean_metrics
from scoremed.benchmarks.calibration import calibrated_std
from scoremed.prior import ScorePrior
from scoremed.settings import default_method, settings_for
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


def warm_start_options(prior: ScorePrior, operator, classical: torch.Tensor, **solve_options) -> tuple[dict, str]:
    """(solve options, start label) for a run that has already computed the ``classical`` result
    (B, C, H, W): a classical warm start (explicit, or the prior's "auto") reuses it as
    ``start_image`` instead of computing it again; the label is the start as calibrations name it."""
    method = solve_options.get("method") or default_method(prior)
    started = {key: solve_options[key] for key in ("start", "t_start") if solve_options.get(key) is not None}
    start = resolve_start(settings_for(prior, method, **started), operator).start_label
    if start.startswith("classical"):
        solve_options = {**solve_options, "start_image": classical}
    return solve_options, start


def run_comparison(y: torch.Tensor, operator, prior: ScorePrior, truth: torch.Tensor | None = None,
                   n_samples: int = 1, extra_baselines: bool = False,
                   **solve_options) -> tuple[dict[str, MethodResult], torch.Tensor | None]:
    """Direct (pseudo-inverse), classical and scoremed (posterior mean of ``n_samples``) reconstructions of
    y (B, ...); mean PSNR / SSIM over the batch when ``truth`` (B, C, H, W) is given. ``extra_baselines``: also
    the task's baselines with a row of their own (PnP-BM3D when the bm3d package is installed; a note
    otherwise), each under its name, between classical and scoremed.

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
    method = solve_options.get("method") or default_method(prior)
    solve_options, start = warm_start_options(prior, operator, classical, **solve_options)
    warm = "start_image" in solve_options   # the classical result reused: its time counted as scoremed's
    samples, t_score = _timed(lambda: sample_posterior(y, operator, n_samples, prior=prior, **solve_options))
    std, note = calibrated_std(samples, prior, method, start) if n_samples > 1 else (None, "")
    what = method + ("" if start == "noise" else f" from {start}") + (f"; {note}" if note else "")
    results = {
        "direct": MethodResult("direct (zero-filled / FBP / masked)", direct, t_direct),
        "classical": MethodResult(classical_name(operator), classical, t_classical),
        **extra,
        "scoremed": MethodResult(f"scoremed ({what})", samples.mean(0), t_score + (t_classical if warm else 0.0)),
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

"""The reconstruction-quality benchmark (``scoremed benchmark quality``, ``scripts/benchmark.py``).

Every task simulates measurements of held-out test images (never used in training or
tuning), then compares the direct reconstruction, the classical baseline and scoremed's
methods at several numbers of score evaluations (NFE).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scoremed.apps.compare import MethodResult, warm_start
from scoremed.apps.figures import save_figure
from scoremed.apps.metrics import batch_metrics, image_metrics
from scoremed.benchmarks.report import markdown_table
from scoremed.solve import sample_posterior
from scoremed.tasks import classical_name, classical_reconstruction, ct, get_task, inpaint, mri, own_row_baselines


@dataclass(frozen=True)
class Task:
    name: str
    op: str
    prior: str
    options: object = None       #: the task's options (None: its defaults)


TASKS = [
    Task("mri-4x", "mri", "mri-brain", mri.Options(accel=4, mask="random")),
    Task("mri-8x", "mri", "mri-brain", mri.Options(accel=8, mask="random")),
    Task("mri-8x-poisson", "mri", "mri-brain", mri.Options(accel=8, mask="poisson")),
    Task("ct-23-views", "ct", "ct-phantom", ct.Options(views=23)),
    Task("ct-12-views", "ct", "ct-phantom", ct.Options(views=12)),
    Task("inpaint-box", "inpaint", "natural", inpaint.Options(mask_kind="box")),
    Task("inpaint-random-70", "inpaint", "natural", inpaint.Options(mask_kind="random")),
    Task("colorize", "colorize", "natural"),
]


def steps_for(settings, nfe: int) -> int:
    """Predictor steps of ``settings`` that spend ``nfe`` score evaluations."""
    return max(1, nfe // settings.evaluations_per_step)


def _row(task: str, method: str, nfe: object, scores: dict[str, np.ndarray], seconds: float) -> list[object]:
    return [task, method, nfe, f"{scores['psnr'].mean():.2f} ± {scores['psnr'].std():.2f}",
            f"{scores['ssim'].mean():.3f} ± {scores['ssim'].std():.3f}", f"{seconds:.2f}"]


def run_task(task: Task, n_images: int, nfe_levels: dict[str, list[int]], figure_dir: Path | None,
             device=None, seed: int = 0, std_samples: int = 4, native: bool = False) -> list[list[object]]:
    """Rows (task, method, NFE, PSNR, SSIM, s/image) for one task on its prior's test split; writes its figure.

    ``nfe_levels`` maps each scoremed method to the NFE levels it is run at; ``native``: the
    test split at its own resolution (resolution-free priors) instead of 64 x 64.
    """
    from scoremed.data import get_dataset
    from scoremed.priors import load_prior

    prior = load_prior(task.prior, device=device)
    test = get_dataset(task.prior, "test", image_size=None if native else 64)
    truth = torch.stack([test[i] for i in range(min(n_images, len(test)))]).to(prior.device)
    figure = figure_dir / f"{task.name}.png" if figure_dir is not None else None
    return compare_methods(task, task.name, truth, prior, nfe_levels, figure, seed, std_samples)


def compare_methods(task: Task, label: str, truth: torch.Tensor, prior, nfe_levels: dict[str, list[int]],
                    figure: Path | None, seed: int = 0, std_samples: int = 4,
                    extra_baselines: bool = False) -> list[list[object]]:
    """Rows (label, method, NFE, PSNR, SSIM, s/image) of direct, classical and scoremed on images
    ``truth`` (B, C, H, W) measured by ``task``'s operator at their own size; draws ``figure``.
    ``extra_baselines``: a row for each baseline of the task compared in a row of its own (PnP-BM3D when
    the bm3d package is installed, a note otherwise), after the classical one."""
    operator = get_task(task.op).make_operator(tuple(truth.shape[1:]), task.options).to(prior.device)
    y = operator(truth)
    n = truth.shape[0]
    rows, shown = [], {}
    start = time.perf_counter()
    direct = operator.pseudo_inverse(y)
    rows.append(_row(label, "direct", 0, batch_metrics(truth, direct), (time.perf_counter() - start) / n))
    shown["direct"] = MethodResult("direct", direct[:1], 0.0)
    start = time.perf_counter()
    classical = classical_reconstruction(y, operator)
    t_classical = (time.perf_counter() - start) / n
    rows.append(_row(label, classical_name(operator), 0, batch_metrics(truth, classical), t_classical))
    shown["classical"] = MethodResult(classical_name(operator), classical[:1], 0.0)
    for baseline, params, name in own_row_baselines(operator) if extra_baselines else []:
        start = time.perf_counter()
        image = baseline.run(y, operator, **params)
        rows.append(_row(label, name, 0, batch_metrics(truth, image), (time.perf_counter() - start) / n))
    best = None
    for method, levels in nfe_levels.items():
        settings, start_image = warm_start(prior, operator, classical, method=method)
        for nfe in levels:
            start = time.perf_counter()
            x_hat = sample_posterior(y, operator, 1, prior, settings, steps=steps_for(settings, nfe), seed=seed,
                                     progress=False, start_image=start_image)[0]
            # a warm start reuses the classical result: its time counts as scoremed's
            seconds = (time.perf_counter() - start) / n + (t_classical if start_image is not None else 0.0)
            scores = batch_metrics(truth, x_hat)
            name = f"scoremed {method} from {settings.start_label}"
            rows.append(_row(label, name, nfe, scores, seconds))
            if best is None or scores["psnr"].mean() > best[0]:
                best = (scores["psnr"].mean(), method, name, nfe, x_hat)
    if figure is not None and best is not None:
        _, method, name, nfe, x_hat = best
        std = None
        if std_samples > 1:
            settings, start_image = warm_start(prior, operator, classical[:1], method=method)
            samples = sample_posterior(y[:1], operator, std_samples, prior, settings, seed=seed + 1, progress=False,
                                       steps=steps_for(settings, min(nfe, 200)), start_image=start_image)
            std = samples.std(0)
        metrics = image_metrics(truth[0], x_hat[0])
        shown["scoremed"] = MethodResult(f"{name} ({nfe} NFE)", x_hat[:1], 0.0, metrics)
        for key in ("direct", "classical"):
            shown[key].metrics = image_metrics(truth[0], shown[key].image[0])
        save_figure(figure, shown, truth[:1], std)
    return rows


HEADER = ["task", "method", "NFE", "PSNR dB (mean ± std)", "SSIM (mean ± std)", "s / image"]


def benchmark_markdown(rows: list[list[object]], n_images: int, note: str) -> str:
    return (f"## Reconstruction quality (`scoremed benchmark quality`)\n\n{note}\n\n"
            f"{n_images} held-out test images per task (64×64). NFE = score-network evaluations per image; "
            "PC methods use one Langevin corrector step per predictor step.\n\n" + markdown_table(HEADER, rows)
            + "\n\nFigures: `docs/figures/<task>.png` (truth | direct | classical | scoremed | |error| | std).")

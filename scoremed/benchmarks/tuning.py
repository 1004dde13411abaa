"""Tuning on *validation* images: solve hyperparameters (snr, lam / zeta), stored as the prior's
defaults (``solve_defaults`` in its JSON metadata), and the classical baselines' parameters, stored in
the tuned table (:mod:`scoremed.tasks.tuned`) with their untuned and tuned validation and test scores.
Both are tuned on a shipped prior's tuning task (:func:`scoremed.priors.shipped_prior`)."""
from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from pathlib import Path

import torch

from scoremed.apps.metrics import mean_metrics
from scoremed.benchmarks.report import markdown_table
from scoremed.errors import InputError
from scoremed.priors import ShippedPrior, load_prior, shipped_prior, shipped_priors, update_metadata
from scoremed.solve import sample_posterior
from scoremed.tasks import Baseline, get_task
from scoremed.tasks.tuned import read_table, size_key, write_entry

log = logging.getLogger("scoremed")

#: searched values; t_start < T means start="direct" (the direct reconstruction perturbed to t_start)
GRIDS = {
    "consistency": {"snr": [0.16, 0.4, 0.7], "lam": [0.8], "t_start": [1.0, 0.3]},
    "projection": {"snr": [0.16, 0.4, 0.7], "t_start": [1.0, 0.3]},
    "dps": {"zeta": [0.25, 0.5, 1.0, 2.0, 4.0]},   # scaled per step (scoremed.sampling.conditioning.DPSScore)
    "dds": {"eta": [0.85, 1.0], "cg_iterations": [2, 5]},
}


def with_start(params: dict) -> dict:
    """Add ``start`` to a grid point: "direct" when it starts below T."""
    if "t_start" in params:
        return {**params, "start": "direct" if params["t_start"] < 1.0 else "noise"}
    return params


def tune(prior_name: str, method: str, steps: int, n_images: int = 4, seed: int = 0) -> tuple[dict, list]:
    """Grid-search ``GRIDS[method]`` on validation images; returns (best settings, all trials)."""
    from scoremed.data import get_dataset

    prior = load_prior(prior_name)
    tuning = shipped_prior(prior_name)
    val = get_dataset(prior_name, "val")
    truth = torch.stack([val[i * (len(val) // n_images)] for i in range(n_images)])
    operator = get_task(tuning.task).make_operator(tuple(truth.shape[1:]), tuning.options)
    y = operator(truth)
    grid = GRIDS[method]
    trials = []
    for values in itertools.product(*grid.values()):
        params = with_start(dict(zip(grid, values)))
        x_hat = sample_posterior(y, operator, 1, prior=prior, method=method, steps=steps, seed=seed,
                                 progress=False, **params)[0]
        scores = mean_metrics(truth, x_hat)
        trials.append({**params, "ssim": scores["ssim"], "psnr": scores["psnr"]})
        log.info("%s %s %s: SSIM %.4f PSNR %.2f", prior_name, method, params, scores["ssim"], scores["psnr"])
    best = max(trials, key=lambda trial: trial["ssim"])
    settings = with_start({k: best[k] for k in grid})
    settings["steps"] = steps
    return settings, trials


def store_defaults(prior_name: str, method: str, settings: dict, trials: list, directory: Path | None = None) -> Path:
    """Write ``settings`` into the prior's JSON as ``solve_defaults[method]`` (with the trial log)."""
    def edit(meta: dict) -> None:
        meta.setdefault("solve_defaults", {})[method] = settings
        meta.setdefault("tuning", {})[method] = {"images": "validation split", "objective": "mean SSIM",
                                                 "trials": trials}

    return update_metadata(prior_name, edit, directory)


def classical_setting(task_name: str) -> ShippedPrior:
    """The shipped prior tuned on task ``task_name``: the task's classical baselines are tuned on its data
    set with its task options."""
    priors = shipped_priors()
    for prior in priors:
        if prior.task == task_name:
            return prior
    raise InputError(f"task: classical baselines are tuned on the shipped priors' tasks "
                     f"{sorted({p.task for p in priors})}, got {task_name!r}")


def split_images(data: str, split: str, n_images: int, image_size: int | None = None) -> tuple[torch.Tensor, list]:
    """(images (n, C, H, W), their indices) of a built-in split (``image_size`` None: native resolution):
    ``n_images`` evenly spaced validation items, or the first test items (those the benchmarks use)."""
    from scoremed.data import get_dataset

    items = get_dataset(data, split, image_size=image_size)
    step = len(items) // n_images if split == "val" else 1
    indices = [i * step for i in range(n_images)]
    return torch.stack([items[i] for i in indices]), indices


def _scored(params: dict, truth: torch.Tensor, images: torch.Tensor) -> dict:
    scores = mean_metrics(truth, images)
    return {"params": params, "psnr": round(scores["psnr"], 3), "ssim": round(scores["ssim"], 4)}


def grid_trials(baseline: Baseline, y: torch.Tensor, operator, truth: torch.Tensor) -> list[dict]:
    """Mean PSNR / SSIM of every point of ``baseline.grid`` on ``truth``; an iterative baseline runs once
    per point of its other parameters and is scored after each listed number of iterations."""
    grid = dict(baseline.grid)
    steps = grid.pop(baseline.steps) if baseline.steps else None
    trials = []
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values))
        if steps is None:
            trials.append(_scored(point, truth, baseline(y, operator, **point)))
            continue

        def record(i: int, images: torch.Tensor, point: dict = point) -> None:
            if i in steps:
                trials.append(_scored({**point, baseline.steps: i}, truth, images))

        baseline(y, operator, callback=record, **point, **{baseline.steps: max(steps)})
        log.info("%s %s: %s", baseline.name, point, [(t["params"][baseline.steps], t["psnr"]) for t in trials[-len(steps):]])
    return trials


def tune_classical(task_name: str, n_images: int = 3, image_size: int | None = None, n_test: int = 3,
                   device=None, only: list[str] | None = None) -> dict:
    """Tune every baseline of ``task_name`` on ``n_images`` validation images of its setting
    (:func:`classical_setting`; ``image_size`` None: native) by mean PSNR; score the untuned and
    tuned parameters on ``n_test`` test images too. Returns the tuned-table entry; its ``strongest``
    is never a baseline with a row of its own (PnP-BM3D). A baseline whose optional package is
    missing is left out with a note (an entry tuned without it keeps no figures for it).

    ``only``: tune just these baselines (names); the others keep their figures from the stored entry
    at the same size, which must then be for the same validation and test images."""
    for name in only or []:
        get_task(task_name).baseline(name)      # an InputError naming the task's baselines
    start = time.perf_counter()
    setting = classical_setting(task_name)
    data, options = setting.name, setting.options
    task = get_task(task_name)
    truth, indices = split_images(data, "val", n_images, image_size)
    test, test_indices = split_images(data, "test", n_test, image_size)
    operator = task.make_operator(tuple(truth.shape[1:]), options).to(device)
    truth, test = truth.to(device), test.to(device)
    y, y_test = operator(truth), operator(test)
    previous = (read_table()["tasks"].get(task_name) or {}).get(size_key(tuple(truth.shape[-2:]))) if only else None
    if only and previous is None:
        raise InputError(f"--baselines: no stored {task_name} entry at {size_key(tuple(truth.shape[-2:]))} to keep "
                         "the other baselines of; tune all baselines first")
    if only and (previous["indices"], previous.get("test_indices")) != (indices, test_indices):
        raise InputError(f"--baselines: the stored {task_name} entry was tuned on validation items "
                         f"{previous['indices']} and scored on test items {previous.get('test_indices')}, now "
                         f"{indices} and {test_indices} (--images or --test-images differ); tune all baselines")
    baselines = {k: v for k, v in previous["baselines"].items() if k not in only} if only else {}
    for baseline in task.baselines:
        if only and baseline.name not in only:
            continue
        if not baseline.applies(operator) or not baseline.available():
            log.info("%s: not tuned (%s)", baseline.label, f"needs the optional {baseline.requires} package"
                     if baseline.applies(operator) else "does not apply to the tuning operator")
            continue
        trials = grid_trials(baseline, y, operator, truth) if baseline.grid else []
        untuned = next((t for t in trials if t["params"] == dict(baseline.untuned)), None) \
            or _scored(dict(baseline.untuned), truth, baseline(y, operator))
        best = max(trials, key=lambda t: t["psnr"]) if trials else untuned
        baselines[baseline.name] = {
            "params": best["params"], "psnr": best["psnr"], "ssim": best["ssim"],
            "untuned": {"params": untuned["params"], "psnr": untuned["psnr"], "ssim": untuned["ssim"]},
            "test": {name: _scored(params, test, baseline(y_test, operator, **params))
                     for name, params in (("untuned", dict(baseline.untuned)), ("tuned", best["params"]))},
            "trials": trials}
    return {"data": f"{data} validation split", "indices": indices, "test_indices": test_indices,
            "image_size": list(truth.shape[-2:]), "options": dataclasses.asdict(options),
            "objective": "mean PSNR (dB) on the validation images",
            "strongest": max((name for name in baselines if not task.baseline(name).own_row),
                             key=lambda name: baselines[name]["psnr"]), "baselines": baselines,
            "seconds": round(time.perf_counter() - start, 1)}


def store_classical(task_name: str, entry: dict, path=None) -> Path:
    """Write ``entry`` into the tuned table (default: the shipped one) at its image size."""
    return write_entry(task_name, tuple(entry["image_size"]), entry, path)


CLASSICAL_HEADER = ["task", "size", "baseline", "untuned", "val PSNR / SSIM untuned", "tuned", "val tuned",
                    "test untuned", "test tuned"]


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "-"


def classical_markdown(table: dict | None = None) -> str:
    """The tuned-table's figures as a Markdown section: every baseline untuned vs tuned, validation and test."""
    table = read_table() if table is None else table
    rows = []
    for task_name, entries in table["tasks"].items():
        for size, entry in entries.items():
            for name, b in entry["baselines"].items():
                label = get_task(task_name).baseline(name).label + (" **(strongest)**" if name == entry["strongest"]
                                                                    else "")
                test = b.get("test", {})
                rows.append([task_name, size, label, _params(b["untuned"]["params"]),
                             f"{b['untuned']['psnr']:.2f} / {b['untuned']['ssim']:.3f}", _params(b["params"]),
                             f"{b['psnr']:.2f} / {b['ssim']:.3f}",
                             *(f"{test[k]['psnr']:.2f} / {test[k]['ssim']:.3f}" if k in test else "-"
                               for k in ("untuned", "tuned"))])
    return ("## Classical baselines, untuned vs tuned (`scoremed tune --classical`)\n\n"
            "Parameters tuned by mean PSNR on validation images (MRI 4x random lines, CT 23 of 180 views, "
            "inpainting 70 % random pixels); PSNR dB / SSIM on those validation images and on held-out test "
            "images. `reconstruct` and the benchmarks run the strongest tuned baseline of each task as "
            "\"classical\"; PnP-BM3D (with the bm3d package) is compared in a row of its own and never chosen "
            "as the strongest.\n\n"
            + markdown_table(CLASSICAL_HEADER, rows))

"""Search solve hyperparameters (snr, lam / zeta) on *validation* images and store the best
as the prior's defaults (``solve_defaults`` in its JSON metadata)."""
from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import torch

from scoremed.apps.metrics import mean_metrics
from scoremed.io.atomic import atomic_write_text
from scoremed.solve import sample_posterior
from scoremed.tasks import ct, get_task, inpaint, mri
from scoremed.training.checkpoint import SHIPPED_DIR, load_prior, read_json

log = logging.getLogger("scoremed")

#: the task each shipped prior is tuned on
TUNING_TASK = {"mri-brain": ("mri", mri.Options(accel=4)), "ct-phantom": ("ct", ct.Options(views=23)),
               "natural": ("inpaint", inpaint.Options(mask_kind="random"))}
#: searched values; t_start < T means start="direct" (the direct reconstruction perturbed to t_start)
GRIDS = {
    "consistency": {"snr": [0.16, 0.4, 0.7], "lam": [0.8], "t_start": [1.0, 0.3]},
    "projection": {"snr": [0.16, 0.4, 0.7], "t_start": [1.0, 0.3]},
    "dps": {"zeta": [0.25, 0.5, 1.0, 2.0, 4.0]},   # per ||A|| (scoremed.sampling.DPSScore)
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
    op_name, options = TUNING_TASK[prior_name]
    val = get_dataset(prior_name, "val")
    truth = torch.stack([val[i * (len(val) // n_images)] for i in range(n_images)])
    operator = get_task(op_name).make_operator(tuple(truth.shape[1:]), options)
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


def store_defaults(prior_name: str, method: str, settings: dict, trials: list, directory: Path = SHIPPED_DIR) -> Path:
    """Write ``settings`` into the prior's JSON as ``solve_defaults[method]`` (with the trial log)."""
    path = Path(directory) / f"{prior_name}.json"
    meta = read_json(path)
    meta.setdefault("solve_defaults", {})[method] = settings
    meta.setdefault("tuning", {})[method] = {"images": "validation split", "objective": "mean SSIM", "trials": trials}
    atomic_write_text(path, json.dumps(meta, indent=2))
    return path

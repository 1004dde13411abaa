"""Quality against network evaluations on *validation* images (``scoremed benchmark curves``).

For each shipped prior's tuning task: PSNR / SSIM and seconds per image of every method at
several NFE levels, the cost of one CG data-consistency step against one network evaluation at
the same image size, and the default the curves choose — the cheapest (method, NFE) within
``tolerance`` dB of the best point measured. A method is a name (run from noise) or
``METHOD@START-T``, e.g. ``diffpir@classical-0.3``: started from the tuned classical (or direct)
reconstruction perturbed to t = T. ``--store`` writes the choice into the prior's JSON
(``default_method``, ``solve_defaults[method]``: steps, and start="auto" / t_start for a classical
start; the curve under ``curves``).
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch

from scoremed.apps.metrics import mean_metrics
from scoremed.benchmarks.quality import Task, steps_for
from scoremed.benchmarks.report import markdown_table, write_report_section
from scoremed.benchmarks.tuning import split_images
from scoremed.errors import InputError, SamplingDiverged
from scoremed.io.atomic import atomic_write
from scoremed.priors import load_prior, prior_path, shipped_prior, update_metadata
from scoremed.sampling import DDSStep
from scoremed.sampling.methods import METHODS as SOLVE_METHODS
from scoremed.settings import settings_for
from scoremed.solve import sample_posterior
from scoremed.tasks import get_task

log = logging.getLogger("scoremed")

METHODS = ("dds", "diffpir", "consistency", "projection", "dps")
NFE_LEVELS = (25, 50, 100, 200, 1000)
HEADER = ["prior", "task", "method", "NFE", "PSNR dB", "SSIM", "s / image"]


def parse_method(name: str) -> tuple[str, dict]:
    """(method, start options) of a curve's method name: "dds" -> ("dds", {"start": "noise"});
    "diffpir@classical-0.3" -> ("diffpir", {"start": "classical", "t_start": 0.3})."""
    method, _, start = name.partition("@")
    kind, _, t_start = start.partition("-")
    try:
        options = {"start": kind, "t_start": float(t_start)} if start else {"start": "noise"}
    except ValueError:
        options = None
    if method not in SOLVE_METHODS or options is None or options["start"] not in ("noise", "direct", "classical"):
        raise InputError(f"method: expected one of {list(SOLVE_METHODS)}, optionally with @classical-T or @direct-T "
                         f"(a start time T in (0, 1]), got {name!r}")
    return method, options


def curve_task(prior_name: str) -> Task:
    """The task shipped prior ``prior_name``'s curves are measured on: its tuning task."""
    shipped = shipped_prior(prior_name)
    return Task(shipped.label, shipped.task, prior_name, shipped.options)


def centre_crop(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """The central size x size window of (B, C, H, W) images (None or larger than the image: unchanged)."""
    h, w = images.shape[-2:]
    if size is None or size >= min(h, w):
        return images
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top:top + size, left:left + size]


def validation_images(prior_name: str, n_images: int, size: int | None) -> torch.Tensor:
    """``n_images`` validation images of the prior's data at ``size`` x ``size`` (None: native): the central
    crop at native pixel size, except for CT, where a crop is not an object a scanner measures (it would
    be cut off inside the field of view), so the whole slice is resampled (antialiased) instead."""
    images = split_images(prior_name, "val", n_images)[0]
    if size is None or shipped_prior(prior_name).task != "ct":
        return centre_crop(images, size)
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True,
                                           align_corners=False).clamp(0, 1)


def curve_points(task: Task, prior, truth: torch.Tensor, levels: dict[str, list[int]], seed: int = 0) -> list[dict]:
    """{method, nfe, psnr, ssim, seconds} for every method and NFE level on images ``truth`` (B, C, H, W);
    a diverged run is kept with psnr / ssim NaN."""
    operator = get_task(task.op).make_operator(tuple(truth.shape[1:]), task.options).to(prior.device)
    y = operator(truth)
    points = []
    for name, nfes in levels.items():
        method, options = parse_method(name)
        settings = settings_for(method, prior, **options)
        for nfe in nfes:
            start = time.perf_counter()
            try:
                x_hat = sample_posterior(y, operator, 1, prior, settings, steps=steps_for(settings, nfe), seed=seed,
                                         progress=False)[0]
                scores = mean_metrics(truth, x_hat)
            except SamplingDiverged as exc:
                log.warning("%s %s %d NFE diverged: %s", task.name, name, nfe, exc)
                scores = {"psnr": math.nan, "ssim": math.nan}
            seconds = (time.perf_counter() - start) / truth.shape[0]
            points.append({"method": name, "nfe": nfe, "psnr": round(scores["psnr"], 3),
                           "ssim": round(scores["ssim"], 4), "seconds": round(seconds, 2)})
            log.info("%s %s %4d NFE: %.2f dB / %.4f, %.1f s", task.name, name, nfe, scores["psnr"],
                     scores["ssim"], seconds)
    return points


def choose_default(points: list[dict], tolerance: float = 0.5, max_nfe: int | None = None) -> dict:
    """The cheapest point (fewest NFE, then highest PSNR) within ``tolerance`` dB of the best PSNR among the
    points of at most ``max_nfe`` evaluations (None: all; a default must fit a reconstruction's time budget)."""
    finite = [p for p in points if math.isfinite(p["psnr"]) and (max_nfe is None or p["nfe"] <= max_nfe)]
    if not finite:
        raise InputError(f"points: no run of at most {max_nfe} NFE finished; no default can be chosen")
    best = max(p["psnr"] for p in finite)
    return min((p for p in finite if p["psnr"] >= best - tolerance), key=lambda p: (p["nfe"], -p["psnr"]))


def cg_step_cost(prior, task: Task, shape: tuple[int, ...], iterations: int, repeats: int = 3) -> dict:
    """Seconds of one network evaluation and of one CG data step (``iterations`` CG iterations) on one
    image of ``shape`` (C, H, W), best of ``repeats``, and their ratio."""
    operator = get_task(task.op).make_operator(shape, task.options).to(prior.device)
    x = torch.rand(1, *shape, device=prior.device)
    y, t = operator(x), torch.full((1,), 0.5, device=prior.device)
    step = DDSStep(operator, y, iterations)

    def best_time(fn) -> float:
        fn()   # warm-up (and the cached A^H y of the CG step)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    with torch.no_grad():
        network = best_time(lambda: prior.score(x, t))
        cg = best_time(lambda: step.refine(x, t))
    return {"size": list(shape[-2:]), "cg_iterations": iterations, "network_s": round(network, 6),
            "cg_s": round(cg, 6), "ratio": round(cg / network, 4)}


def plot_curves(points: list[dict], title: str, path: Path) -> None:
    """PSNR against NFE (log axis), one line per method, written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for method in dict.fromkeys(p["method"] for p in points):
        mine = [p for p in points if p["method"] == method]
        ax.plot([p["nfe"] for p in mine], [p["psnr"] for p in mine], marker="o", label=method)
    ax.set_xscale("log")
    ax.set_xlabel("network evaluations (NFE)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(Path(path), lambda p: fig.savefig(p, dpi=110), suffix=".png")
    plt.close(fig)


def store_choice(prior_name: str, record: dict, directory: Path | None = None) -> Path:
    """Write the chosen default (method, steps, start) and the curve into the prior's JSON; a classical
    start is stored as start="auto" (classical where the operator's task has a baseline, else noise)."""
    method, options = parse_method(record["choice"]["method"])
    steps = steps_for(settings_for(method, load_prior(prior_path(prior_name, directory))), record["choice"]["nfe"])

    def edit(meta: dict) -> None:
        meta["default_method"] = method
        defaults = meta.setdefault("solve_defaults", {}).setdefault(method, {})
        defaults["steps"] = steps
        for key in ("start", "t_start"):
            defaults.pop(key, None)
        if options["start"] != "noise":
            defaults.update(start="auto" if options["start"] == "classical" else options["start"],
                            t_start=options["t_start"])
        meta.setdefault("curves", {})[record["task"]] = record

    return update_metadata(prior_name, edit, directory)


def curves_markdown(records: dict[str, dict], note: str = "") -> str:
    rows, costs = [], []
    for name, record in records.items():
        choice = record["choice"]
        for p in record["points"]:
            chosen = " **(default)**" if (p["method"], p["nfe"]) == (choice["method"], choice["nfe"]) else ""
            rows.append([name, record["task"], p["method"] + chosen, p["nfe"], f"{p['psnr']:.2f}", f"{p['ssim']:.3f}",
                         f"{p['seconds']:.1f}"])
        c = record["cg_cost"]
        costs.append([name, "x".join(map(str, c["size"])), c["cg_iterations"], f"{c['network_s']:.3f}",
                      f"{c['cg_s']:.4f}", f"{100 * c['ratio']:.1f} %"])
    first = next(iter(records.values()))
    sizes = "; ".join(f"{name} {r['size']} ({r['how']})" for name, r in records.items())
    return ("## Quality against network evaluations (`scoremed benchmark curves`)\n\n"
            + (note + "\n\n" if note else "")
            + f"{first['images']} validation images per prior (never test images): {sizes} — native, a central crop at "
              "native pixel size, or for CT the whole slice resampled; the same network under every method. The "
              f"default of each prior is the cheapest point within {first['tolerance']} dB of its best PSNR at "
              f"≤ {first.get('max_default_nfe')} NFE (stored in its JSON by `--store`). "
              "Figures: `docs/figures/curves-<prior>.png`.\n\n"
            + markdown_table(HEADER, rows)
            + "\n\nOne CG data step (dds) against one network evaluation (tiles, patch batch 16), same image:\n\n"
            + markdown_table(["prior", "size", "CG iterations", "network s", "CG step s", "CG / network"], costs))


def run(priors: list[str], n_images: int, size: int | None, levels: dict[str, list[int]], report, section: str,
        figure_dir, tolerance: float = 0.5, max_default_nfe: int | None = 100, store: bool = False, note: str = "", cost_size: int = 256,
        device=None) -> dict[str, dict]:
    """Measure the curves of every prior in ``priors``, writing the report section after each."""
    for name in levels:
        parse_method(name)   # a misspelt method fails before any measurement
    records = {}
    for name in priors:
        task = curve_task(name)
        prior = load_prior(name, device=device)
        truth = validation_images(name, n_images, size).to(prior.device)
        start = time.perf_counter()
        points = curve_points(task, prior, truth, levels)
        dds = prior.solve_defaults.get("dds", {}).get("cg_iterations", 5)
        how = "native" if size is None else "resampled" if task.op == "ct" else "central crop"
        record = {"task": task.name, "images": truth.shape[0], "size": "x".join(map(str, truth.shape[-2:])),
                  "how": how,
                  "tolerance": tolerance, "points": points, "choice": choose_default(points, tolerance, max_default_nfe), "max_default_nfe": max_default_nfe,
                  "cg_cost": cg_step_cost(prior, task, (truth.shape[1], cost_size, cost_size), dds),
                  "seconds": round(time.perf_counter() - start, 1)}
        records[name] = record
        if figure_dir is not None:
            plot_curves(points, f"{name}: {task.name}, {record['images']} validation images {record['size']}",
                        Path(figure_dir) / f"curves-{name}.png")
        if store:
            log.info("stored the default of %s in %s", name, store_choice(name, record))
        if report is not None:
            write_report_section(report, section, curves_markdown(records, note))
        print(markdown_table(HEADER, [[name, task.name, p["method"], p["nfe"], p["psnr"], p["ssim"], p["seconds"]]
                                      for p in points]), flush=True)
    return records

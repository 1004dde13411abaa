"""The speed benchmark (``scoremed benchmark speed``, ``scripts/benchmark_speed.py``): measurements.

Three measurements (the markdown is :mod:`scoremed.benchmarks.speed_report`):

1. **Sampler overhead**: process CPU time of a full ``scoremed.solve`` divided by the CPU
   time of the same number of network evaluations alone (same batch and image size). CPU
   time rather than wall time, because the wall time of a shared machine mostly measures
   the other jobs; both are reported.
2. **Training throughput** (images/s from ``log.csv``) of ``scoremed train`` in one process
   and under ``torchrun`` with two processes, same global batch.
3. **Reconstruction**: PSNR / SSIM against the number of score evaluations (NFE) of every
   sampler on held-out test images (4x random Cartesian MRI with the shipped ``mri-brain``
   prior), next to the 1000-step PC baseline, and seconds per slice of the prior's default
   (what ``scoremed.solve(y, op)`` runs). Every row is labelled from its resolved settings.

The prior is loaded by name, so re-running the script after new weights are shipped
updates the tables.
"""
from __future__ import annotations

import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from scoremed.apps.metrics import mean_metrics
from scoremed.benchmarks.speed_report import report_from_raw
from scoremed.configs import find_config
from scoremed.prior import ScorePrior
from scoremed.sampling import CountingScore
from scoremed.sampling.methods import SolveSettings
from scoremed.settings import with_overrides
from scoremed.solve import at_operator_size, resolve_start, sample_posterior
from scoremed.tasks import mri
from scoremed.priors import load_prior
from scoremed.training.config import load_config

@dataclass(frozen=True)
class Sampler:
    """A family of solve settings whose cost is set by ``steps``: ``overrides`` of the prior's stored defaults
    (with ``method``; none: the prior's own default). Rows are labelled from the resolved settings."""
    overrides: dict[str, Any]
    steps: tuple[int, ...]
    quick_steps: tuple[int, ...]

    def settings(self, prior: ScorePrior, operator, steps: int) -> SolveSettings:
        """The resolved settings of a run of ``steps`` steps (start decided for ``operator``)."""
        return resolve_start(with_overrides(None, prior, **self.overrides, steps=steps), operator)


#: the prior's default (what ``scoremed.solve(y, op)`` runs), the 1000-step PC baseline and the other samplers
DEFAULT = Sampler({}, (25, 50, 100), (50,))
BASELINE = Sampler({"method": "consistency", "start": "noise"}, (100, 250, 500, 1000), (250, 1000))
DPM = Sampler({"method": "consistency", "start": "noise", "predictor": "dpm2m", "corrector": "none"}, (50, 100, 200),
              ())
SAMPLERS = [
    DEFAULT,
    BASELINE,
    Sampler({"method": "consistency", "start": "noise", "snr": 0.7}, (50, 100, 250), (100,)),
    Sampler({"method": "consistency", "start": "direct", "t_start": 0.3, "snr": 0.7}, (25, 50, 100, 200), (50,)),
    DPM,
    Sampler({"method": "dds", "start": "noise"}, (25, 50, 100), (50,)),
    Sampler({"method": "diffpir", "start": "noise"}, (25, 50, 100), (50,)),
]


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine_description() -> str:
    """Processor, logical CPUs, torch version and threads, CUDA availability."""
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch thread(s) per process, "
            f"CUDA {'available' if torch.cuda.is_available() else 'not available'}")


def counted(prior: ScorePrior) -> tuple[ScorePrior, CountingScore]:
    """A copy of ``prior`` whose score function counts its calls."""
    counter = CountingScore(prior.score_fn)
    return ScorePrior(prior.sde, counter, prior.image_shape, centered=prior.centered, name=prior.name,
                      solve_defaults=prior.solve_defaults, metadata=prior.metadata), counter


def _clocks() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def test_images(name: str, count: int) -> torch.Tensor:
    """``count`` test-split items spread over the test set: (count, C, H, W)."""
    from scoremed.data import get_dataset

    data = get_dataset(name, "test")
    stride = max(1, len(data) // count)
    return torch.stack([data[i * stride] for i in range(count)])


def mri_operator(image_shape: tuple[int, int, int], accel: float = 4.0, seed: int = 0):
    """4x random Cartesian MRI (8 % centre) for images (C, H, W)."""
    return mri.make_operator(image_shape, mri.Options(accel=accel, seed=seed))


# --- 1. sampler overhead ----------------------------------------------------------------------------
class CheapScore:
    """A near-free analytic score (of N(m, s_d^2 I) under the SDE): runs the sampler without the network."""

    def __init__(self, sde, mean: float = 0.3, sigma_data: float = 0.25):
        self.sde, self.mean, self.var = sde, mean, sigma_data ** 2

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.sde.mean_coeff(t)
        var = a * a * self.var + self.sde.marginal_std(t) ** 2
        return -(x - a.reshape(-1, *[1] * (x.ndim - 1)) * self.mean) / var.reshape(-1, *[1] * (x.ndim - 1))


def sampler_overhead(prior: ScorePrior, operator, y: torch.Tensor, settings: SolveSettings, repeats: int = 3) -> dict:
    """The sampler's overhead over its network evaluations, measured two ways (CPU time; wall time too).

    - direct: median over ``repeats`` interleaved pairs of (full solve) / (the same number of
      network evaluations alone);
    - decomposed: 1 + (the same solve with a near-free analytic score) / (network evaluations
      alone) — the sampler's own work measured separately, far less sensitive to other jobs.

    Both solves run the same resolved ``settings`` (the cheap prior has no stored defaults of its own).
    """
    sample_posterior(y, operator, prior=prior, settings=settings, steps=2, seed=0, progress=False)   # warm-up
    shape = (y.shape[0], *prior.image_shape)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0), device=y.device)
    cheap = ScorePrior(prior.sde, CheapScore(prior.sde), prior.image_shape, centered=prior.centered,
                       metadata=prior.metadata)
    cpu_ratios, wall_ratios, solve_cpu, net_cpu, sampler_cpu, nfe = [], [], [], [], [], 0
    for _ in range(repeats):
        c0, _w = _clocks()
        sample_posterior(y, operator, prior=cheap, settings=settings, seed=0, progress=False)
        sampler_cpu.append(_clocks()[0] - c0)
        prior_c, counter = counted(prior)
        c0, w0 = _clocks()
        sample_posterior(y, operator, prior=prior_c, settings=settings, seed=0, progress=False)
        c1, w1 = _clocks()
        nfe = counter.calls
        times = torch.linspace(1.0, 1e-3, nfe)
        with torch.no_grad():
            c2, w2 = _clocks()
            for t in times:
                prior.score(x, t.expand(shape[0]))
            c3, w3 = _clocks()
        solve_cpu.append(c1 - c0)
        net_cpu.append(c3 - c2)
        cpu_ratios.append((c1 - c0) / (c3 - c2))
        wall_ratios.append((w1 - w0) / (w3 - w2))
    return {"nfe": nfe, "solve_cpu": statistics.median(solve_cpu), "net_cpu": statistics.median(net_cpu),
            "sampler_cpu": statistics.median(sampler_cpu), "ratio_cpu": statistics.median(cpu_ratios),
            "ratio_wall": statistics.median(wall_ratios),
            "ratio_decomposed": 1 + statistics.median(sampler_cpu) / statistics.median(net_cpu)}


# --- 2. training throughput ---------------------------------------------------------------------------
def _throughput(run_dir: Path) -> float:
    """Images/s over the logged intervals after the first (which includes start-up)."""
    with open(run_dir / "log.csv") as fh:
        rates = [float(row["images_per_s"]) for row in csv.DictReader(fh)]
    rates = rates[1:] or rates
    return statistics.median(rates)


def training_throughput(config_name: str, steps: int, intervals: int = 4, rounds: int = 2,
                        timeout: float = 900) -> list[dict]:
    """images/s of ``scoremed train``: 1 process x 1 thread and torchrun 2 processes x 1 thread (alternating,
    ``rounds`` times each, median), and 1 process x 2 threads once."""
    config = load_config(find_config(config_name))
    values = config.to_dict()
    values["training"].update(steps=steps, log_every=max(1, steps // intervals), checkpoint_every=10 ** 9)
    command = ["-m", "scoremed", "train"]
    results = []
    with tempfile.TemporaryDirectory(prefix="scoremed_speed_") as tmp:
        path = Path(tmp) / "throughput.yaml"
        path.write_text(yaml.safe_dump(values))
        single = ("1 process", 1, 1, [sys.executable, *command])
        ddp = ("torchrun, DDP gloo", 2, 1, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                            "--nproc_per_node=2", *command])
        runs = [single, ddp] * rounds + [("1 process", 1, 2, [sys.executable, *command])]
        for k, (label, procs, threads, cmd) in enumerate(runs):
            out = Path(tmp) / f"run{k}"
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            start = time.perf_counter()
            done = subprocess.run(cmd + ["--config", str(path), "--out", str(out), "--no-progress", "--device", "cpu"],
                                  capture_output=True, text=True, timeout=timeout, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"training run '{label}' failed:\n{done.stderr[-2000:]}")
            results.append({"label": label, "processes": procs, "threads": threads, "load_before": load,
                            "images_per_s": _throughput(out), "wall": time.perf_counter() - start})
    merged: dict[tuple, dict] = {}
    for r in results:
        m = merged.setdefault((r["label"], r["processes"], r["threads"]), {**r, "all": [], "loads": []})
        m["all"].append(r["images_per_s"])
        m["loads"].append(r["load_before"])
    for m in merged.values():
        m["images_per_s"] = statistics.median(m["all"])
        m["load_before"] = statistics.mean(m["loads"])
    return list(merged.values())


# --- 3. reconstruction quality and time ---------------------------------------------------------------
def reconstruct(prior: ScorePrior, operator, truth: torch.Tensor, settings: SolveSettings) -> dict:
    """Solve all images in one batch; PSNR/SSIM means, NFE, seconds per slice (wall and CPU)."""
    y = operator(truth)
    prior_c, counter = counted(prior)
    c0, w0 = _clocks()
    x = sample_posterior(y, operator, prior=prior_c, settings=settings, seed=0, progress=False)[0]
    c1, w1 = _clocks()
    n = truth.shape[0]
    return {"nfe": counter.calls, **mean_metrics(truth, x), "wall_per_slice": (w1 - w0) / n,
            "cpu_per_slice": (c1 - c0) / n}


def direct_scores(operator, truth: torch.Tensor) -> dict:
    return mean_metrics(truth, operator.pseudo_inverse(operator(truth)))


# --- a run ---------------------------------------------------------------------------------------------
SECTIONS = ("overhead", "training", "quality")
#: the targets the report compares the measurements with
TARGETS = {"overhead": 1.05}


def run(quick: bool = True, n_images: int | None = None, train_steps: int | None = None,
        sections: tuple[str, ...] = SECTIONS, previous: dict | None = None, note: str | None = None,
        log=print) -> tuple[str, dict]:
    """Run the measurements of ``sections`` and return (markdown, raw results).

    ``previous`` (the raw results of an earlier run) supplies the sections not re-measured.
    """
    torch.manual_seed(0)
    load_start = _load()
    prior = load_prior("mri-brain", device="cpu")
    truth = test_images("mri-brain", n_images or (2 if quick else 8))
    operator = mri_operator(tuple(truth.shape[1:]))
    prior = at_operator_size(prior, operator, operator(truth))   # a resolution-free prior bound to the images' size
    raw: dict[str, Any] = {"overhead": [], "training": [], "curve": [], **(previous or {}),
                           "quick": quick, "prior_step": prior.metadata.get("training", {}).get("step"),
                           "parameters": sum(p.numel() for p in prior.network.parameters()),
                           "targets": TARGETS, "image_size": list(truth.shape[-2:]), "cuda": torch.cuda.is_available()}
    if note:
        raw["note"] = note
    overhead_steps = 50 if quick else 200
    if "overhead" in sections:
        log("sampler overhead ...")
        y1 = operator(truth[:1])
        overhead = []
        for sampler in (DEFAULT, BASELINE, DPM):
            settings = sampler.settings(prior, operator, overhead_steps)
            result = sampler_overhead(prior, operator, y1, settings, repeats=3 if quick else 5)
            overhead.append({"label": settings.label, **result})
            log(f"  {settings.label}: {result}")
        raw["overhead"] = overhead
        raw["overhead_steps"] = overhead_steps
    if "training" in sections:
        log("training throughput ...")
        raw["training"] = training_throughput("mri-brain", train_steps or (16 if quick else 60))
        log(f"  {raw['training']}")
    if "quality" in sections:
        log("reconstruction quality against evaluations ...")
        curve = [{"sampler": "direct (zero-filled)", "steps": 0, "nfe": 0, **direct_scores(operator, truth)}]
        for sampler in SAMPLERS:
            role = {id(DEFAULT): "default", id(BASELINE): "baseline"}.get(id(sampler))
            for steps in (sampler.quick_steps if quick else sampler.steps):
                settings = sampler.settings(prior, operator, steps)
                result = reconstruct(prior, operator, truth, settings)
                curve.append({"sampler": settings.label, "steps": steps, "role": role, **result})
                log(f"  {settings.label}, {steps} steps: NFE {result['nfe']}, PSNR {result['psnr']:.2f}, "
                    f"{result['wall_per_slice']:.1f} s/slice")
        raw["curve"] = curve
    before = raw.get("machine", {}) if "quality" not in sections else {}
    raw["machine"] = {"description": machine_description(), "cpus": os.cpu_count() or 1,
                      "n_images": before.get("n_images", truth.shape[0]),
                      "load_start": max(load_start, before.get("load_start", 0.0)),
                      "load_end": max(_load(), before.get("load_end", 0.0))}
    return report_from_raw(raw), raw


def save_raw(raw: dict, path: str | os.PathLike) -> None:
    Path(path).write_text(json.dumps(raw, indent=2, default=str))

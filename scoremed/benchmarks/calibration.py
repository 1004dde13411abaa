"""Is the posterior standard deviation of ``sample_posterior`` a trustworthy error bar?

Coverage (see :mod:`scoremed.calibration` for why n samples need :func:`~scoremed.calibration.sample_factor`)
of the raw, the sample-corrected and the calibrated std on validation and test images, and the Pearson
correlation between std and |error| over all pixels. :func:`fit_scale` fits a prior's ``std_scale`` on
validation images; :func:`store_calibration` writes it into the prior's JSON under ``calibration``, where
:func:`scoremed.calibration.calibrated_std` finds it at reconstruction time.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from scoremed.calibration import LEVEL, Z, sample_factor
from scoremed.errors import InputError, check_int


def _flat(*tensors: torch.Tensor) -> list[torch.Tensor]:
    shape = tensors[0].shape
    for t in tensors[1:]:
        if t.shape != shape:
            raise InputError(f"truth, mean, std: expected equal shapes, got {[tuple(x.shape) for x in tensors]}")
    return [t.detach().reshape(-1).double() for t in tensors]


def coverage(truth: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, z: float = Z) -> float:
    """Fraction of pixels with |truth - mean| <= z std (any equal shapes)."""
    truth, mean, std = _flat(truth, mean, std)
    return float(((truth - mean).abs() <= z * std).double().mean())


def per_image_coverage(truth: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, z: float = Z) -> torch.Tensor:
    """Coverage of each image (B, ...) -> (B,)."""
    return ((truth - mean).abs() <= z * std).flatten(1).double().mean(1)


def error_std_correlation(truth: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> float:
    """Pearson correlation between std and |truth - mean| over all pixels (NaN if either is constant)."""
    truth, mean, std = _flat(truth, mean, std)
    return float(torch.corrcoef(torch.stack([std, (truth - mean).abs()]))[0, 1])


def fit_scale(truth: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, n_samples: int,
              level: float = LEVEL) -> float:
    """The ``std_scale`` s with coverage(truth, mean, s * sample_factor(n_samples) * std) = level: the
    level-quantile of |truth - mean| / (z std) over the pixels, divided by sample_factor(n_samples).
    Pixels with std = 0 count as covered only if their error is 0 too."""
    truth, mean, std = _flat(truth, mean, std)
    ratio = (truth - mean).abs() / (Z * std)
    ratio = torch.where((std == 0) & (truth == mean), torch.zeros_like(ratio), ratio)
    return float(torch.quantile(ratio, level)) / sample_factor(n_samples, level)


def report(truth: torch.Tensor, samples: torch.Tensor, std_scale: float | None = None) -> dict[str, float]:
    """Coverage of the raw std, of the std corrected for the number of samples, and (``std_scale``
    given) of the calibrated std, with the std-|error| correlation, for samples (n, B, C, H, W)."""
    n = samples.shape[0]
    mean, std = samples.mean(0), samples.std(0)
    out = {"n_samples": n, "coverage_raw": coverage(truth, mean, std),
           "coverage_sample_corrected": coverage(truth, mean, std * sample_factor(n)),
           "correlation": error_std_correlation(truth, mean, std),
           "rmse": float((truth - mean).pow(2).mean().sqrt()), "mean_std": float(std.mean())}
    if std_scale is not None:
        out["coverage_calibrated"] = coverage(truth, mean, std * std_scale * sample_factor(n))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def calibrate(prior_name: str, method: str, n_val: int = 3, n_test: int = 3, n_samples: int = 8,
              seed: int = 0, device=None, batch_size: int | None = None, size: int | None = None) -> dict:
    """Fit ``std_scale`` for ``method`` of a shipped prior on validation images of its tuning task
    (:func:`scoremed.priors.shipped_prior`) and report raw / sample-corrected / calibrated
    coverage on validation and test images. Returns the record :func:`store_calibration` writes.

    ``size``: images resampled to size x size (a resolution-free prior only; cheaper than its native
    size, which is the default); a fixed-size prior always works at its own size.
    """
    from scoremed.benchmarks.tuning import split_images
    from scoremed.priors import load_prior, shipped_prior
    from scoremed.settings import settings_for
    from scoremed.solve import resolve_start, sample_posterior
    from scoremed.tasks import get_task

    start = time.perf_counter()
    n_samples = check_int(n_samples, "n_samples", 2)
    prior = load_prior(prior_name, device=device)
    tuning = shipped_prior(prior_name)
    if not prior.resolution_free:
        if size not in (None, prior.image_shape[-1]):
            raise InputError(f"size: prior '{prior_name}' works on {prior.image_shape} images only, got {size}")
        size = prior.image_shape[-1]
    sets = {split: split_images(prior_name, split, n, size) for split, n in (("val", n_val), ("test", n_test))}
    operator = get_task(tuning.task).make_operator(tuple(sets["val"][0].shape[1:]), tuning.options).to(prior.device)
    samples = {}
    for split, (truth, _) in sets.items():
        samples[split] = sample_posterior(operator(truth.to(prior.device)), operator, n_samples, prior=prior,
                                          method=method, seed=seed, progress=False, batch_size=batch_size).cpu()
    settings = resolve_start(settings_for(method, prior), operator)
    record = calibration_record(sets["val"][0], samples["val"], sets["test"][0], samples["test"])
    record["validation"]["indices"], record["test"]["indices"] = sets["val"][1], sets["test"][1]
    return {**record, "task": tuning.task, "steps": settings.steps, "start": settings.start_label,
            "weights_sha256": prior.metadata.get("weights_sha256"),
            "seconds": round(time.perf_counter() - start, 1)}


def calibration_record(truth_val: torch.Tensor, samples_val: torch.Tensor, truth_test: torch.Tensor,
                       samples_test: torch.Tensor) -> dict:
    """``std_scale`` fitted on validation truths (B, C, H, W) and their samples (n, B, C, H, W), with the
    coverage report (:func:`report`) of both splits."""
    n = samples_val.shape[0]
    scale = fit_scale(truth_val, samples_val.mean(0), samples_val.std(0), n)
    return {"std_scale": round(scale, 4), "level": LEVEL, "n_samples": n, "image_size": list(truth_val.shape[-2:]),
            "validation": report(truth_val, samples_val, scale), "test": report(truth_test, samples_test, scale)}


def store_calibration(prior_name: str, method: str, record: dict, directory=None) -> Path:
    """Write ``record`` into the shipped prior's JSON as ``calibration[method]``."""
    from scoremed.priors import update_metadata

    def edit(meta: dict) -> None:
        if record.get("weights_sha256") and record["weights_sha256"] != meta.get("weights_sha256"):
            raise InputError(f"prior: '{prior_name}' was re-exported while it was calibrated (its JSON has other "
                             "weights); calibrate it again")
        meta.setdefault("calibration", {})[method] = record

    return update_metadata(prior_name, edit, directory)


HEADER = ["prior", "method", "task", "size", "samples", "std scale", "split", "coverage raw",
          "coverage n-corrected", "coverage calibrated", "corr(std, abs error)"]


def calibration_markdown(priors: dict[str, dict]) -> str:
    """A Markdown section from each prior's ``calibration`` records ({prior name: metadata})."""
    from scoremed.benchmarks.report import markdown_table

    rows = []
    for name, meta in priors.items():
        for method, r in (meta.get("calibration") or {}).items():
            for split in ("validation", "test"):
                s = r[split]
                if r.get("weights_sha256") not in (None, meta.get("weights_sha256")):
                    continue                    # fitted for weights the prior no longer has
                rows.append([name, f"{method} from {r.get('start', 'noise')}", r["task"],
                             "x".join(map(str, r["image_size"])), r["n_samples"],
                             f"{r['std_scale']:.3f}", f"{split} ({len(s['indices'])} images)",
                             f"{s['coverage_raw']:.3f}", f"{s['coverage_sample_corrected']:.3f}",
                             f"{s['coverage_calibrated']:.3f}", f"{s['correlation']:.3f}"])
    return ("## Posterior uncertainty (`scoremed tune --calibrate`)\n\n"
            f"Fraction of pixels inside posterior mean ± {Z:.3f} std (nominal {LEVEL:.0%}) on images the priors "
            "never saw. Raw: the sample std; n-corrected: times the Student-t factor an exact sampler needs "
            "with that many samples; calibrated: times the prior's `std_scale` too, fitted on the validation "
            "images (so only the test rows are a check). `reconstruct --samples N` writes the calibrated std "
            "and says so in the figure.\n\n" + markdown_table(HEADER, rows))

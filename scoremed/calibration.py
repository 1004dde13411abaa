"""The calibrated posterior standard deviation of ``sample_posterior`` samples.

Coverage is the fraction of pixels whose truth lies inside mean +/- 1.645 std (nominal 90 %). With
n samples even an exact sampler under-covers: for a Gaussian posterior (truth - mean) / (std
sqrt(1 + 1/n)) follows Student's t with n - 1 degrees of freedom, so mean +/- 1.645 std covers a
fresh draw with probability P(|t_{n-1}| < 1.645 / sqrt(1 + 1/n)) (76 % for n = 4).
:func:`sample_factor` is the factor that makes it 90 %; a prior's stored ``std_scale`` (fitted on
validation images by :mod:`scoremed.benchmarks.calibration`) corrects what remains, the sampler's own
miscalibration. The calibrated std of n samples is ``std * std_scale * sample_factor(n)``; it is
stored per method, with the start it was fitted from, in the prior's JSON under ``calibration``
(kept in ``prior.metadata``) and applied by :func:`calibrated_std` to samples of that method and
start only.
"""
from __future__ import annotations

import math

import torch

from scoremed.errors import check_int

#: the nominal coverage and its two-sided normal quantile
LEVEL = 0.90
Z = 1.6448536269514722


def sample_factor(n: int, level: float = LEVEL) -> float:
    """t_{n-1, (1+level)/2} sqrt(1 + 1/n) / z_{(1+level)/2}: the factor on the std of n exact Gaussian
    samples that makes mean +/- z std cover a fresh draw with probability ``level``."""
    from scipy.stats import norm, t

    n = check_int(n, "n_samples", 2)
    q = (1 + level) / 2
    return float(t.ppf(q, n - 1) * math.sqrt(1 + 1 / n) / norm.ppf(q))


def stored_scale(prior, method: str, start: str = "noise") -> float | None:
    """The prior's fitted ``std_scale`` for ``method`` started at ``start`` (a
    :attr:`~scoremed.settings.SolveSettings.start_label`; None: not calibrated, calibrated for another
    start, or for other weights than the prior's). A record without a start was fitted from noise."""
    record = (prior.metadata.get("calibration") or {}).get(method)
    if not isinstance(record, dict) or "std_scale" not in record or record.get("start", "noise") != start:
        return None
    fitted, current = record.get("weights_sha256"), prior.metadata.get("weights_sha256")
    return None if fitted and current and fitted != current else float(record["std_scale"])


def calibrated_std(samples: torch.Tensor, prior, method: str, start: str = "noise") -> tuple[torch.Tensor, str]:
    """(std (B, C, H, W), note) of samples (n, B, C, H, W) of ``method`` started at ``start``: scaled by
    the prior's ``std_scale`` for them and :func:`sample_factor` when it has one (note "std x1.23,
    calibrated"), else the raw sample std (note "std uncalibrated")."""
    std = samples.std(0)
    scale = stored_scale(prior, method, start)
    if scale is None:
        return std, "std uncalibrated"
    factor = scale * sample_factor(samples.shape[0])
    return std * factor, f"std x{factor:.2f}, calibrated"

"""Reconstruct a stack of 2D slices in batches: direct, classical and scoremed, with metrics.

Used by ``reconstruct.py`` for volumes (NIfTI, DICOM) and multi-slice k-space (fastMRI).
Only one batch of measurements and sampler state is alive at a time, so memory is bounded
by ``batch_size``, not by the number of slices; the results kept per slice are images at
the prior's resolution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from scoremed.reconstruction import MethodResult, run_comparison


@dataclass
class Batch:
    start: int                        # index of the first slice
    y: torch.Tensor                   # measurement (B, ...)
    operator: object
    truth: torch.Tensor | None = None  # (B, C, S, S) in [0, 1] when known


@dataclass
class StackResult:
    results: dict[str, MethodResult]               # images (N, C, S, S), summed seconds, whole-stack metrics
    per_slice: dict[str, list[dict]] = field(default_factory=dict)
    std: torch.Tensor | None = None                 # (N, C, S, S) posterior std (n_samples > 1)
    truth: torch.Tensor | None = None               # (N, C, S, S)

    def metrics_json(self) -> dict:
        """metrics.json content: whole-volume metrics and per-slice metrics per method."""
        out = {}
        for name, r in self.results.items():
            out[name] = {**r.metrics, "seconds": r.seconds, "per_slice": self.per_slice.get(name, [])}
        return out


def stack_metrics(truth: torch.Tensor, estimate: torch.Tensor) -> tuple[dict, list[dict]]:
    """Whole-stack metrics (PSNR over all voxels, SSIM and PSNR averaged over slices) and per-slice ones."""
    from scoremed.baselines import image_metrics

    per_slice = [image_metrics(t, e) for t, e in zip(truth, estimate)]
    mse = float(((truth.double() - estimate.double().clamp(0, 1)) ** 2).mean())
    volume = {"psnr": 10 * math.log10(1.0 / mse) if mse > 0 else 100.0,
              "ssim": float(np.mean([m["ssim"] for m in per_slice])),
              "psnr_slice_mean": float(np.mean([m["psnr"] for m in per_slice])),
              "slices": len(per_slice)}
    return volume, [{"slice": i, **m} for i, m in enumerate(per_slice)]


def run_stack(batches: Iterator[Batch], n_slices: int, prior, n_samples: int = 1, seed: int = 0,
              progress: bool = True, on_batch: Callable[[int, dict], None] | None = None,
              **solve_options) -> StackResult:
    """Run :func:`scoremed.reconstruction.run_comparison` on every batch and gather the slices.

    ``on_batch(start, {method: images (B, C, S, S) on the CPU})`` lets the caller consume
    results batch by batch (e.g. resample into the output volume). Batch ``b`` uses seed
    ``seed + start``, so results do not depend on the order in which batches run.
    """
    from tqdm.auto import tqdm

    images: dict[str, list[torch.Tensor]] = {}
    labels, seconds = {}, {}
    stds, truths = [], []
    bar = tqdm(total=n_slices, desc="slices", unit="slice", disable=not progress)
    try:
        for batch in batches:
            results, std = run_comparison(batch.y, batch.operator, prior, truth=None, n_samples=n_samples,
                                          seed=seed + batch.start, progress=False, **solve_options)
            cpu = {}
            for name, r in results.items():
                cpu[name] = r.image.detach().cpu().float()
                images.setdefault(name, []).append(cpu[name])
                labels[name] = r.label
                seconds[name] = seconds.get(name, 0.0) + r.seconds
            if std is not None:
                stds.append(std.detach().cpu())
            if batch.truth is not None:
                truths.append(batch.truth.detach().cpu().float())
            if on_batch is not None:
                on_batch(batch.start, cpu)
            bar.update(batch.y.shape[0])
    finally:
        bar.close()
    results = {name: MethodResult(labels[name], torch.cat(parts), seconds[name]) for name, parts in images.items()}
    truth = torch.cat(truths) if truths and len(truths) == len(images["scoremed"]) else None
    per_slice = {}
    if truth is not None:
        for name, r in results.items():
            r.metrics, per_slice[name] = stack_metrics(truth, r.image)
    return StackResult(results, per_slice, torch.cat(stds) if stds else None, truth)

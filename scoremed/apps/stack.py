"""Reconstruct a stack of 2D slices in batches: direct, classical and scoremed, with metrics.

Used for volumes (NIfTI, DICOM) and multi-slice k-space (fastMRI). Only one batch of
measurements and sampler state is alive at a time, so memory is bounded by the batch size,
not by the number of slices; the results kept per slice are images at the prior's resolution.

Under ``torchrun`` (a :class:`scoremed.distributed.DistContext` with several processes)
the batches — fixed work units, batch ``b`` seeded with ``seed + start`` — are shared out and
gathered back in order by :func:`scoremed.distributed.map_sharded`, so every rank ends
with the same :class:`StackResult` as a single process computing all batches;
:func:`sample_posterior_sharded` does the same for the scoremed reconstruction alone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Union

import numpy as np
import torch

from scoremed.apps.compare import MethodResult, run_comparison
from scoremed.apps.metrics import stack_metrics
from scoremed.distributed import DistContext, current_context, map_sharded, shard_range
from scoremed.errors import InputError
from scoremed.solve import sample_posterior

log = logging.getLogger("scoremed")


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
        return {name: {**r.metrics, "seconds": r.seconds, "per_slice": self.per_slice.get(name, [])}
                for name, r in self.results.items()}


#: a batch, or a function building it (only the rank that runs the batch calls it)
BatchSource = Union[Batch, Callable[[], Batch]]


def _run_batch(batch: Batch, prior, n_samples: int, seed: int, solve_options: dict,
               extra_baselines: bool = False) -> dict:
    """One batch on this process: CPU results as a picklable record.

    The sampler gets seed ``seed + start``; numpy's global generator (which the classical
    baseline draws from: sigpy's power iteration starts from a random vector) is seeded with
    the same number for the batch and restored afterwards, so a batch gives the same result
    whichever batches ran before it in the process.
    """
    state = np.random.get_state()
    np.random.seed((seed + batch.start) % 2 ** 32)
    try:
        results, std = run_comparison(batch.y, batch.operator, prior, truth=None, n_samples=n_samples,
                                      extra_baselines=extra_baselines, seed=seed + batch.start, progress=False,
                                      **solve_options)
    finally:
        np.random.set_state(state)
    return {"start": batch.start,
            "methods": {name: (r.label, r.image.detach().cpu().float(), r.seconds) for name, r in results.items()},
            "std": None if std is None else std.detach().cpu(),
            "truth": None if batch.truth is None else batch.truth.detach().cpu().float()}


def _log_shares(n_batches: int, ctx) -> None:
    shares = [shard_range(n_batches, rank, ctx.world_size) for rank in range(ctx.world_size)]
    log.info("%d batch(es) of slices shared over %d processes: %s", n_batches, ctx.world_size,
             ", ".join(f"rank {r}: " + (f"batches {s.start}-{s.stop - 1}" if len(s) > 1 else
                                        f"batch {s.start}" if len(s) else "none") for r, s in enumerate(shares)))


def run_stack(batches: Iterable[BatchSource], n_slices: int, prior, n_samples: int = 1, seed: int = 0,
              progress: bool = True, on_batch: Callable[[int, dict], None] | None = None,
              ctx=None, extra_baselines: bool = False, **solve_options) -> StackResult:
    """Run :func:`scoremed.apps.compare.run_comparison` on every batch and gather the slices.

    ``batches`` yields :class:`Batch` objects or zero-argument functions building them (so
    that, with several processes, a rank builds only the measurements of its own batches).
    ``on_batch(start, {method: images (B, C, S, S) on the CPU})`` lets the caller consume
    results batch by batch, in slice order (e.g. resample into the output volume). Batch
    ``b`` uses seed ``seed + start``, so results do not depend on the order in which batches
    run, nor on which process runs them.

    ``extra_baselines``: also the baselines with a row of their own (PnP-BM3D), for every slice.
    ``ctx``: a :class:`scoremed.distributed.DistContext` (default: the current one);
    with several processes each rank runs its contiguous share of the batches and every rank
    returns the same :class:`StackResult`. ``seconds`` are summed over all batches, whichever
    process ran them (compute time, not wall-clock time).
    """
    from tqdm.auto import tqdm

    ctx = ctx or current_context()
    sources = list(batches)
    if ctx.is_distributed and ctx.is_main:
        _log_shares(len(sources), ctx)
    desc = f"slices (rank {ctx.rank} of {ctx.world_size})" if ctx.is_distributed else "slices"
    bar = tqdm(total=None if ctx.is_distributed else n_slices, desc=desc, unit="slice",
               disable=not (progress and ctx.is_main))

    def run(_k: int, source: BatchSource) -> dict:
        batch = source() if callable(source) else source
        record = _run_batch(batch, prior, n_samples, seed, solve_options, extra_baselines)
        bar.update(batch.y.shape[0])
        return record

    try:
        records = map_sharded(run, sources, ctx)
    finally:
        bar.close()
    images: dict[str, list[torch.Tensor]] = {}
    labels, seconds, stds, truths = {}, {}, [], []
    for record in records:
        for name, (label, image, secs) in record["methods"].items():
            images.setdefault(name, []).append(image)
            labels[name] = label
            seconds[name] = seconds.get(name, 0.0) + secs
        if record["std"] is not None:
            stds.append(record["std"])
        if record["truth"] is not None:
            truths.append(record["truth"])
        if on_batch is not None:
            on_batch(record["start"], {name: image for name, (_, image, _) in record["methods"].items()})
    results = {name: MethodResult(labels[name], torch.cat(parts), seconds[name]) for name, parts in images.items()}
    truth = torch.cat(truths) if truths and len(truths) == len(images["scoremed"]) else None
    per_slice = {}
    if truth is not None:
        for name, r in results.items():
            r.metrics, per_slice[name] = stack_metrics(truth, r.image)
    return StackResult(results, per_slice, torch.cat(stds) if stds else None, truth)


def sample_posterior_sharded(y: torch.Tensor, operator, n: int = 1, *, chunk_size: int = 1, seed: int = 0,
                             ctx: DistContext | None = None, **options: Any) -> torch.Tensor:
    """:func:`scoremed.sample_posterior` of a stack of measurements ``y`` (S, ...), shared over ranks.

    The S measurements (slices of a study, or volumes) are cut into chunks of ``chunk_size``;
    chunk k is solved with seed ``seed + k``, whichever rank runs it, so the result —
    (n, S, *image_shape) on every rank, in the original order — does not depend on the
    number of processes. Without a process group this is the same loop in one process.
    """
    if isinstance(chunk_size, bool) or int(chunk_size) < 1:
        raise InputError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    chunk_size = int(chunk_size)
    ctx = ctx or current_context(options.get("device"))
    chunks = [slice(start, start + chunk_size) for start in range(0, y.shape[0], chunk_size)]

    def run(k: int, part: slice) -> torch.Tensor:
        return sample_posterior(y[part], operator, n, seed=int(seed) + k, **options).cpu()

    return torch.cat(map_sharded(run, chunks, ctx), dim=1)


def solve_sharded(y: torch.Tensor, operator, *, n_samples: int = 1, chunk_size: int = 1, seed: int = 0,
                  ctx: DistContext | None = None, **options: Any) -> torch.Tensor:
    """:func:`scoremed.solve` of a stack of measurements shared over ranks; (S, *image_shape) on every rank."""
    return sample_posterior_sharded(y, operator, n_samples, chunk_size=chunk_size, seed=seed, ctx=ctx,
                                    **options).mean(0)

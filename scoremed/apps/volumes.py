"""Whole volumes and multi-slice k-space: read, reconstruct every slice in batches at the data's own
in-plane grid (resolution-free priors) or on the prior's / the asked ``resize`` grid and resampled
back (:mod:`scoremed.apps.grid`), in the input's units, and write NIfTI (and optionally DICOM).

All outputs are assembled in memory first (:class:`VolumeOutputs`) and written only after
every slice has been reconstructed, each file atomically; an error anywhere writes nothing.

Both jobs take ``ctx`` (a :class:`scoremed.distributed.DistContext`): under ``torchrun``
the batches of slices are shared out over the processes and gathered back in order
(:func:`scoremed.apps.stack.run_stack`); every rank returns the same :class:`VolumeOutputs`,
and the caller lets rank 0 alone write them.
"""
from __future__ import annotations

import functools
import gzip
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scoremed.apps.compare import metrics_table
from scoremed.apps.figures import save_figure
from scoremed.apps.grid import check_native_size, job_grid, task_operator
from scoremed.apps.kspace import read_kspace
from scoremed.apps.options import ReconstructOptions
from scoremed.apps.stack import Batch, StackResult, run_stack
from scoremed.errors import InputError
from scoremed.io.atomic import atomic_write
from scoremed.io.dicom import LPS_TO_RAS, encode_series, series_datasets, write_series
from scoremed.io.nifti import nifti_image
from scoremed.io.slices import IntensityWindow, SliceGeometry, fit_to_size, restore_size
from scoremed.io.volumes import load_volume
from scoremed.tasks import get_task
from scoremed.tasks.mri import coil_operator, make_mask

log = logging.getLogger("scoremed")


@dataclass
class VolumeOutputs:
    """Everything a volume job writes, held in memory until :meth:`write`."""
    stack: StackResult
    data: np.ndarray                       # reconstruction (X, Y, Z), input units
    affine: np.ndarray
    header: object = None
    std: np.ndarray | None = None          # posterior std (X, Y, Z), input units
    modality: str = "OT"
    dicom_templates: list | None = None
    info: dict = field(default_factory=dict)

    def table(self) -> str:
        return metrics_table(self.stack.results)

    def write(self, out: str | Path, dicom_out: str | Path | None = None) -> None:
        """Encode every file in memory, then write them (each atomically)."""
        out = Path(out)
        files = {"reconstruction.nii.gz": gzip.compress(nifti_image(self.data, self.affine, self.header).to_bytes())}
        if self.std is not None:
            files["std.nii.gz"] = gzip.compress(nifti_image(self.std, self.affine, self.header).to_bytes())
        if self.stack.truth is not None:
            metrics = {**self.stack.metrics_json(), "input": self.info}
            files["metrics.json"] = json.dumps(metrics, indent=2).encode()
        encoded = None
        if dicom_out is not None:
            encoded = encode_series(series_datasets(self.data, self.affine, self.dicom_templates, self.modality))
        n = self.stack.results["scoremed"].image.shape[0]
        save_figure(out / "figure.png", self.stack.results, self.stack.truth, self.stack.std, index=n // 2)
        for name, data in files.items():
            atomic_write(out / name, lambda p, data=data: p.write_bytes(data), suffix=name[name.index("."):])
        if encoded is not None:
            write_series(dicom_out, encoded)
            log.info("wrote a DICOM series of %d files to %s", len(encoded), dicom_out)
        log.info("wrote %s", out)


def _square_grid(prior, resize: int | None, what: str) -> int | None:
    """The side S of the square grid slices are resampled to, or None for their own grid (one-channel priors)."""
    if prior.image_shape[0] != 1:
        raise InputError(f"prior: {what} need a one-channel prior, '{prior.name}' works on {prior.image_shape}")
    grid = job_grid(prior, resize)
    if grid is not None and grid[0] != grid[1]:
        raise InputError(f"prior: {what} need a square prior, '{prior.name}' works on {prior.image_shape}")
    return None if grid is None else grid[0]


def reconstruct_volume(options: ReconstructOptions, prior, ctx=None) -> VolumeOutputs:
    """``options.input`` NIfTI / DICOM: every slice from a measurement simulated at the slices' own in-plane
    grid (resolution-free prior) or on the square grid of the prior / ``options.resize``."""
    size = _square_grid(prior, options.resize, "volumes")
    volume = load_volume(options.input, options.volume_index, argument="input")
    geometry = SliceGeometry.for_volume(volume.data.shape, volume.affine, options.slice_axis)
    window = IntensityWindow.from_data(volume.data, options.intensity, options.ct_window, argument="input")
    slices = geometry.to_slices(volume.data)
    n, rows, cols = slices.shape
    what = f"every slice of {Path(volume.source).name}"
    if size is None:
        check_native_size(prior, (rows, cols), what, "input")
    grid = (rows, cols) if size is None else (size, size)
    log.info("volume %s: %s %s, %d slices of %dx%d along RAS axis %d, intensity [%g, %g] -> [0, 1], "
             "reconstructed at %dx%d%s", volume.source, volume.kind, volume.data.shape, n, rows, cols,
             options.slice_axis, window.low, window.high, *grid, f" ({'; '.join(volume.notes)})" if volume.notes else "")
    device = options.device
    operator = task_operator(get_task(options.op, "op"), (1, *grid), options.operator, what, "input").to(device)
    batch_size = int(options.batch_size)

    def to_grid(stack: torch.Tensor) -> torch.Tensor:
        return stack if size is None else fit_to_size(stack, size)

    def to_volume_grid(stack: torch.Tensor) -> torch.Tensor:
        return stack if size is None else restore_size(stack, (rows, cols))

    def make_batch(start: int) -> Batch:
        chunk = torch.from_numpy(window.normalise(slices[start:start + batch_size]))[:, None]
        truth = to_grid(chunk).clamp_(0, 1)
        return Batch(start, operator(truth.to(device)), operator, truth)

    batches = [functools.partial(make_batch, start) for start in range(0, n, batch_size)]
    recon = np.empty((n, rows, cols), dtype=np.float32)

    def on_batch(start: int, images: dict) -> None:
        native = to_volume_grid(images["scoremed"].clamp(0, 1))[:, 0].numpy()
        recon[start:start + native.shape[0]] = window.restore(native)

    stack = run_stack(batches, n, prior, n_samples=options.samples, seed=options.seed, progress=options.progress,
                      on_batch=on_batch, ctx=ctx, extra_baselines=bool(options.extra_baselines), device=device,
                      **options.settings)
    std = None
    if stack.std is not None:
        std = geometry.from_slices(to_volume_grid(stack.std)[:, 0].numpy() * (window.high - window.low))
    resolution = "the slices' own grid" if size is None else f"the {size}x{size} grid"
    info = {"source": volume.source, "kind": volume.kind, "shape": list(volume.data.shape),
            "slice_axis": options.slice_axis, "intensity_window": [window.low, window.high], "grid": list(grid),
            "notes": volume.notes, "metrics": f"at {resolution}, intensities in [0, 1]; psnr over all slices"}
    return VolumeOutputs(stack, geometry.from_slices(recon), volume.affine, volume.header, std, volume.modality,
                         volume.dicom.datasets if volume.dicom is not None and volume.dicom.datasets else None, info)


def reconstruct_kspace_file(options: ReconstructOptions, prior, ctx=None) -> VolumeOutputs:
    """``options.kspace`` (fastMRI HDF5): every slice, one slice (operator) at a time."""
    size = _square_grid(prior, options.resize, "k-space files")
    if options.volume_index is not None:
        raise InputError("volume_index: only for 4D NIfTI input")
    data = read_kspace(options.kspace, size, options.kspace_mask, lambda grid: make_mask(grid, options.operator))
    n, coils, rows, cols = data.kspace.shape
    if size is None:
        check_native_size(prior, (rows, cols), f"the k-space grid of {Path(data.source).name}", "kspace")
    log.info("k-space %s: %d slice(s), %s (%d coil(s)), %dx%d, reconstructed at %dx%d; %s", data.source, n,
             "multi-coil" if data.multicoil else "single-coil", coils, *data.original_shape, rows, cols,
             "; ".join(data.notes))
    device = options.device

    def make_batch(i: int) -> Batch:  # each slice has its own coil maps, hence its own operator
        operator = coil_operator(data.kspace[i], data.mask, data.multicoil).to(device)
        truth = None if data.reference is None else data.reference[i:i + 1].clamp(0, 1)
        return Batch(i, data.kspace[i:i + 1].to(device), operator, truth)

    stack = run_stack([functools.partial(make_batch, i) for i in range(n)], n, prior, n_samples=options.samples,
                      seed=options.seed, progress=options.progress, ctx=ctx,
                      extra_baselines=bool(options.extra_baselines), device=device, **options.settings)
    magnitude = stack.results["scoremed"].image.abs()[:, 0].numpy() * data.scale      # (N, rows, cols)
    pixel = data.original_shape[1] / cols           # in the file's pixels: 1 on the file's own grid
    affine = LPS_TO_RAS @ np.diag([pixel, pixel, 1.0, 1.0])
    std = None if stack.std is None else (stack.std[:, 0].numpy() * data.scale).transpose(2, 1, 0)
    reference = "the file's own grid" if size is None else f"the {size}x{size} low-pass grid"
    info = {"source": data.source, "kind": "kspace", "multicoil": data.multicoil, "coils": int(coils),
            "kspace_shape": list(data.original_shape), "grid": [rows, cols], "scale": data.scale,
            "notes": data.notes,
            "layout": "reconstruction.nii.gz holds (columns, rows, slices); pixel size in original pixels",
            "metrics": f"against the fully sampled RSS image on {reference}, intensities / scale"}
    return VolumeOutputs(stack, magnitude.transpose(2, 1, 0).copy(), affine, None, std, "MR", None, info)

"""The reconstruction job behind ``scoremed reconstruct``: one image (simulated or measured) or a whole
volume / k-space file, compared across direct, classical and scoremed reconstructions.

    outputs = reconstruct(ReconstructOptions(op="mri", operator=mri.Options(accel=8), input="t2.nii.gz"))
    print(outputs.table()); outputs.write("outputs/mri")
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scoremed.apps.compare import MethodResult, metrics_table, run_comparison
from scoremed.apps.figures import save_figure
from scoremed.apps.grid import check_native_size, job_grid, task_operator
from scoremed.apps.kspace import kspace_on_grid
from scoremed.apps.options import ReconstructOptions
from scoremed.io.slices import fit_to_size
from scoremed.apps.volumes import VolumeOutputs, reconstruct_kspace_file, reconstruct_volume
from scoremed.errors import InputError
from scoremed.io.atomic import atomic_write, atomic_write_text
from scoremed.io.fastmri import is_hdf5, read_npy
from scoremed.io.images import load_image, save_png
from scoremed.io.nifti import save_nifti_slice
from scoremed.io.volumes import is_volume_input
from scoremed.settings import default_method
from scoremed.tasks import TASKS, ct, get_task
from scoremed.priors import load_prior

log = logging.getLogger("scoremed")

#: measurements with more pixels than this (256 x 256) get a note on the speed option ``resize``
LARGE_PIXELS = 256 * 256


@dataclass
class SliceOutputs:
    """The results of one 2D reconstruction, written by :meth:`write`."""
    op: str
    results: dict[str, MethodResult]
    truth: torch.Tensor | None          # (1, C, H, W)
    std: torch.Tensor | None            # (1, C, H, W)
    scale: float = 1.0                  # measured k-space: the factor the data were divided by

    def table(self) -> str:
        return metrics_table(self.results)

    def write(self, out: str | Path, dicom_out: str | Path | None = None) -> None:
        """Reconstruction (NIfTI for medical tasks, PNG for natural images), figure and metrics.json."""
        if dicom_out is not None:
            raise InputError("dicom_out: only for volume input (NIfTI, DICOM) or HDF5 k-space")
        out = Path(out)
        image = self.results["scoremed"].image[0].cpu() * self.scale
        if get_task(self.op, "op").medical:
            save_nifti_slice(out / "reconstruction.nii.gz", image)
        else:
            save_png(out / "reconstruction.png", image)
        save_figure(out / "figure.png", self.results, self.truth, self.std)
        if self.std is not None:
            std_array = self.std[0].cpu().numpy()
            atomic_write(out / "std.npy", lambda p: np.save(p, std_array, allow_pickle=False), suffix=".npy")
        if self.truth is not None:
            metrics = {name: {**r.metrics, "seconds": r.seconds} for name, r in self.results.items()}
            atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
        log.info("wrote %s", out)


def measured_sinogram(path: str, views: int, size: int | None, angles_path: str | None = None,
                      argument: str = "sinogram", angles_argument: str = "sinogram_angles"):
    """(y (1, 1, V, n), CT operator of n x n images) from a sinogram .npy (V, n detectors).

    The views are ``views`` evenly spaced ones of 180, or the angles (radians, (V,)) in the .npy
    file ``angles_path``; ``size`` = n fixes the detector count (None: the file's own).
    """
    angles = None
    if angles_path is not None:
        angles = read_npy(angles_path, angles_argument)
        if angles.ndim != 1 or angles.size < 1 or not np.isrealobj(angles) or not np.isfinite(angles).all():
            raise InputError(f"{angles_argument}: expected a 1-D array of finite view angles in radians, "
                             f"got {angles.dtype} {angles.shape}")
        views = angles.size
    s = read_npy(path, argument)
    s = s[None] if s.ndim == 2 else s
    n = s.shape[-1] if size is None and s.ndim == 3 else size
    if s.ndim != 3 or s.shape[-2:] != (views, n) or not np.isrealobj(s):
        detectors = "n_detectors" if size is None else f"n_detectors={size}"
        raise InputError(f"{argument}: expected a real array (n_views={views}, {detectors}), got {s.dtype} {s.shape}")
    if not np.isfinite(s).all():
        raise InputError(f"{argument}: contains NaN or Inf")
    return torch.from_numpy(s.astype(np.float32))[None], ct.measured_operator(n, views, angles)


def simulated_truth(options: ReconstructOptions, task, channels: int, grid: tuple[int, int] | None):
    """(truth (1, C, H, W) in [0, 1], where it came from): ``options.input`` or the shipped test image of the
    task's default prior, on its own grid (``grid`` None), resampled to a fixed-size prior's ``grid``, or
    padded to a square and resampled to ``options.resize``."""
    native = grid is None or options.resize is not None
    if options.input:
        truth, source = load_image(options.input, channels, None if native else grid, argument="input"), options.input
    else:
        from scoremed.data import default_test_image

        truth = default_test_image(task.default_prior, native=native)
        source = f"the shipped '{task.default_prior}' test image"
    truth = truth[None]
    if options.resize is not None:
        truth = fit_to_size(truth, options.resize).clamp_(0, 1)
    return truth, source


def check_measured_data(options: ReconstructOptions, task) -> None:
    """Refuse measured data (``kspace``, ``sinogram``) of a kind the task does not reconstruct from."""
    for name, given in (("kspace", options.kspace), ("sinogram", options.sinogram)):
        if given and name not in task.measured_data:
            readers = " or ".join(t.name for t in TASKS.values() if name in t.measured_data)
            raise InputError(f"{name}: only with op {readers}, got op {options.op}")


def is_volume_job(options: ReconstructOptions, channels: int) -> bool:
    """Whether the input is a whole volume (NIfTI / DICOM, one-channel prior) or an HDF5 k-space file."""
    return bool(options.kspace and is_hdf5(options.kspace)
                or (options.input and channels == 1 and is_volume_input(options.input)))


def reconstruct(options: ReconstructOptions, ctx=None) -> SliceOutputs | VolumeOutputs | None:
    """Run the job. Volumes: every rank returns the same :class:`VolumeOutputs` (rank 0 should write
    them). One 2D image: rank 0 reconstructs it and returns :class:`SliceOutputs`; other ranks None."""
    options.check()
    task = get_task(options.op, "op")
    device = options.device
    prior_name = options.prior or task.default_prior
    prior = load_prior(prior_name, device=device)
    channels, grid = prior.channels, job_grid(prior, options.resize)   # grid None: the data's own
    check_measured_data(options, task)
    if is_volume_job(options, channels):
        if options.kspace:
            return reconstruct_kspace_file(options, prior, ctx)
        return reconstruct_volume(options, prior, ctx)
    if options.dicom_out is not None:
        raise InputError("dicom_out: only for volume input (NIfTI, DICOM) or HDF5 k-space")
    if options.volume_index is not None:
        raise InputError("volume_index: only for 4D NIfTI input")
    truth, scale = None, 1.0
    if options.kspace:
        y, operator, scale = kspace_on_grid(options.kspace, options.kspace_mask, grid)
        if grid is None:
            check_native_size(prior, y.shape, "the k-space", "kspace")
    elif options.sinogram:
        y, operator = measured_sinogram(options.sinogram, options.operator.views, None if grid is None else grid[0],
                                        options.sinogram_angles)
        if grid is None:
            check_native_size(prior, (y.shape[-1],) * 2, "the image of the sinogram's detector row", "sinogram")
    else:
        truth, source = simulated_truth(options, task, channels, grid)
        if grid is not None and tuple(truth.shape[1:]) != (channels, *grid):
            raise InputError(f"prior: '{prior_name}' works on {prior.image_shape} images, the input is "
                             f"{tuple(truth.shape[1:])}")
        what = "the image" if options.input else source
        if grid is None:
            check_native_size(prior, truth.shape, what, "input")
        operator = task_operator(task, tuple(truth.shape[1:]), options.operator, what, "input")
        y = operator(truth)
        log.info("simulated a %s measurement from %s at %dx%d", options.op, source, *truth.shape[-2:])
    h, w = (s or n for s, n in zip(operator.image_shape[-2:], y.shape[-2:]))   # Grayscale: free sizes, y's
    if grid is None and not options.sinogram and h * w > LARGE_PIXELS:
        log.info("reconstructing %dx%d images at the data's own grid: a patch prior's cost grows with the pixel "
                 "count; the resize option (e.g. resize=256) trades resolution for speed", h, w)
    if ctx is not None and not ctx.is_main:
        return None
    if ctx is not None and ctx.is_distributed:
        log.info("one image: nothing to share out over %d processes; rank 0 reconstructs it", ctx.world_size)
    log.info("prior '%s', method %s", prior.name, options.settings.get("method") or default_method(prior))
    results, std = run_comparison(y.to(device), operator.to(device), prior,
                                  truth=truth.to(device) if truth is not None else None, n_samples=options.samples,
                                  extra_baselines=options.extra_baselines is not False, seed=options.seed,
                                  progress=options.progress, device=device, **options.settings)
    return SliceOutputs(options.op, results, truth, std, scale)

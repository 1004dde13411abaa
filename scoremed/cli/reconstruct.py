"""``reconstruct.py``: reconstruct MRI, CT, inpainting or colorization measurements with a score prior.

With no input it simulates the measurement from the shipped test image of the task's
default prior and prints PSNR / SSIM / time for the direct, classical and scoremed results.

Volumes: ``--input vol.nii.gz`` or ``--input dicom_folder/`` reconstructs every slice (along
RAS axis ``--slice-axis``, in batches of ``--batch-size``) from measurements simulated at the
prior's resolution and writes ``reconstruction.nii.gz`` with the input's shape, affine and
intensity units (``--dicom-out`` adds a derived DICOM series). Measured k-space:
``--kspace file.h5`` (fastMRI single- or multi-coil; brought to the prior's grid by a
central k-space crop, see :mod:`scoremed.io.kspace`) or ``--kspace file.npy``.
Nothing is written unless every slice was reconstructed.

Several processes: ``torchrun --nproc_per_node=P scripts/reconstruct.py --input vol.nii.gz ...``
(or ``--kspace file.h5``) shares the batches of slices out over the P processes (each batch
keeps its seed, ``--seed`` + its first slice) and gathers them in order, so the outputs are
the same as those of one process; only rank 0 prints and writes. A single 2D image is not
split: rank 0 reconstructs it and the other ranks exit.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from scoremed.training.checkpoint import load_prior
from scoremed.cli import speed
from scoremed.cli.common import resolve_device, run_cli
from scoremed.training.distributed import BACKENDS, init_distributed, shutdown
from scoremed.errors import InputError
from scoremed.io.kspace import is_hdf5
from scoremed.io.volumes import is_volume_input
from scoremed.io.images import load_image, save_nifti_slice, save_png
from scoremed.io.slices import INTENSITY_MODES
from scoremed.io_atomic import atomic_write, atomic_write_text
from scoremed.reconstruction import (DEFAULT_PRIOR_FOR_OP, OPS, OperatorOptions, make_operator, metrics_table,
                                     run_comparison, save_figure)
from scoremed.solve import METHODS

log = logging.getLogger("scoremed")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reconstruct.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--op", default="mri", help=f"task: {', '.join(OPS)} (default: mri)")
    g = p.add_argument_group("MRI")
    g.add_argument("--accel", type=float, default=4.0, help="acceleration (default 4)")
    g.add_argument("--center-fraction", type=float, default=0.08, help="fully sampled centre (default 0.08)")
    g.add_argument("--mask", default="random", help="random | equispaced | poisson (default random)")
    p.add_argument_group("CT").add_argument("--views", type=int, default=23, help="measured views of 180 (default 23)")
    p.add_argument_group("inpainting").add_argument("--mask-kind", default="box", help="box | random | half")
    src = p.add_argument_group("input (default: the shipped test image of the task)")
    src.add_argument("--input", help="image to simulate the measurement from (PNG/JPG/TIFF, .npy, NIfTI, DICOM)")
    src.add_argument("--kspace", help="measured k-space: fastMRI HDF5 (.h5: 'kspace' (slices, H, W) single-coil or "
                                      "(slices, coils, H, W) multi-coil) or .npy complex (H, W) / (C, H, W) on the "
                                      "prior's grid; zeros where unsampled")
    src.add_argument("--kspace-mask", help="sampling mask .npy ((W,), (1, W) or (H, W)) of --kspace (default: the "
                                           "file's 'mask' dataset, else its non-zero locations)")
    src.add_argument("--sinogram", help="measured sinogram (.npy (n_views, n_detectors)) at --views evenly spaced angles")
    v = p.add_argument_group("volumes (NIfTI, DICOM series folder or file)")
    v.add_argument("--volume-index", type=int, help="volume of a 4D NIfTI image to reconstruct (0-based)")
    v.add_argument("--slice-axis", type=int, default=2, help="RAS axis to slice along: 0 sagittal, 1 coronal, "
                                                             "2 axial (default 2)")
    v.add_argument("--intensity", default="percentile", help=f"{' | '.join(INTENSITY_MODES)}: scaling to the "
                   "prior's [0, 1] (percentile: the volume's 0.5-99.5th percentiles; ct: --ct-window in HU)")
    v.add_argument("--ct-window", type=float, nargs=2, default=[-1000.0, 1000.0], metavar=("LOW", "HIGH"),
                   help="HU window mapped to [0, 1] with --intensity ct (default -1000 1000)")
    v.add_argument("--batch-size", type=int, default=8, help="slices reconstructed together (default 8)")
    v.add_argument("--dicom-out", nargs="?", const="", default=None, metavar="DIR",
                   help="also write a derived DICOM series (default folder: <out>/dicom)")
    s = p.add_argument_group("solver")
    s.add_argument("--prior", help="shipped prior name, .safetensors checkpoint or training run folder")
    s.add_argument("--method", default="consistency", help=f"{', '.join(METHODS)} (default consistency)")
    s.add_argument("--steps", type=int, help="predictor steps (default: the prior's stored default)")
    s.add_argument("--snr", type=float, help="Langevin signal-to-noise ratio")
    s.add_argument("--lam", type=float, help="consistency weight in [0, 1]")
    s.add_argument("--samples", type=int, default=1, help="posterior samples; >1 adds a std map")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda if available; under torchrun cuda:LOCAL_RANK)")
    s.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="torch.distributed backend under torchrun: auto = nccl on CUDA, gloo on the CPU")
    p.add_argument("--out", default=None, help="output folder (default: outputs/<op>)")
    p.add_argument("--no-progress", action="store_true")
    speed.add_sampler_arguments(p)
    speed.add_speed_arguments(p)
    return p


def _load_npy(path: str, argument: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{argument}: cannot read {path} as .npy: {exc}") from None


def measured_kspace(path: str, mask_path: str | None, size: tuple[int, int]):
    """(y (1, C, H, W) complex64, MRI operator, scale) from a k-space .npy file on the prior's grid,
    scaled so the zero-filled image's 99.5th percentile is 1. The mask is ``mask_path`` (.npy)
    or the non-zero locations."""
    from scoremed.io.kspace import _check_mask, _read_mask
    from scoremed.operators import MRI

    k = _load_npy(path, "--kspace")
    if not np.iscomplexobj(k):
        raise InputError(f"--kspace: expected complex k-space, got {k.dtype}")
    k = k[None] if k.ndim == 2 else k
    if k.ndim != 3 or tuple(k.shape[-2:]) != size:
        raise InputError(f"--kspace: expected shape (H, W) or (C, H, W) with (H, W) = {size} (the prior's size), "
                         f"got {k.shape}")
    if not np.isfinite(k).all():
        raise InputError("--kspace: contains NaN or Inf")
    if mask_path:
        mask = _check_mask(_read_mask(mask_path), size, "--kspace-mask").expand(*size).contiguous()
        k = k * mask.numpy()
    else:
        mask = torch.from_numpy((np.abs(k) > 0).any(axis=0).astype(np.float32))
    y = torch.from_numpy(k.astype(np.complex64))[None]
    operator = MRI(mask)
    scale = float(torch.quantile(operator.pseudo_inverse(y).abs().flatten(), 0.995).clamp_min(1e-12))
    return y / scale, operator, scale


def measured_sinogram(path: str, views: int, size: int):
    from scoremed.operators import CT, sparse_view_angles

    s = _load_npy(path, "--sinogram")
    s = s[None] if s.ndim == 2 else s
    if s.ndim != 3 or s.shape[-2:] != (views, size) or not np.isrealobj(s):
        raise InputError(f"--sinogram: expected a real array (n_views={views}, n_detectors={size}), got {s.dtype} {s.shape}")
    if not np.isfinite(s).all():
        raise InputError("--sinogram: contains NaN or Inf")
    return torch.from_numpy(s.astype(np.float32))[None], CT(size, sparse_view_angles(views))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.op not in OPS:
        raise InputError(f"--op: expected one of {list(OPS)}, got {args.op!r}")
    if args.method not in METHODS:
        raise InputError(f"--method: expected one of {list(METHODS)}, got {args.method!r}")
    if sum(x is not None for x in (args.input, args.kspace, args.sinogram)) > 1:
        raise InputError("--input, --kspace, --sinogram: give at most one")
    if args.samples < 1:
        raise InputError(f"--samples: expected a positive integer, got {args.samples}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size: expected a positive integer, got {args.batch_size}")
    if args.kspace_mask and not args.kspace:
        raise InputError("--kspace-mask: only together with --kspace")
    out = Path(args.out or Path("outputs") / args.op)
    dicom_out = None if args.dicom_out is None else Path(args.dicom_out or out / "dicom")
    if dicom_out is not None:
        check_dicom_out(dicom_out)
    ctx = init_distributed(resolve_device(args.device) if args.device else None, backend=args.backend)
    try:
        if not ctx.is_main:
            logging.getLogger().setLevel(logging.WARNING)
        return _reconstruct(args, out, dicom_out, ctx)
    finally:
        shutdown(ctx)


def _reconstruct(args, out: Path, dicom_out: Path | None, ctx) -> int:
    device = ctx.device if ctx.is_distributed else resolve_device(args.device)
    prior_name = args.prior or DEFAULT_PRIOR_FOR_OP[args.op]
    prior = load_prior(prior_name, device=device)
    channels, size = prior.image_shape[0], tuple(prior.image_shape[-2:])
    options = OperatorOptions(accel=args.accel, center_fraction=args.center_fraction, mask=args.mask,
                              views=args.views, mask_kind=args.mask_kind, seed=args.seed)
    solve_options = dict(method=args.method, steps=args.steps, snr=args.snr, lam=args.lam, device=device,
                         **speed.solve_options(args))
    if args.kspace and is_hdf5(args.kspace) or (args.input and channels == 1 and is_volume_input(args.input)):
        from scoremed.io import volume_jobs as job

        if args.kspace:
            if args.op != "mri":
                raise InputError(f"--kspace: only with --op mri, got --op {args.op}")
            result = job.reconstruct_kspace_file(args, prior, options, solve_options, ctx=ctx)
        else:
            result = job.reconstruct_volume(args, prior, options, solve_options, ctx=ctx)
        if not ctx.is_main:
            return 0
        print(metrics_table(result.stack.results))
        result.write(out, dicom_out)
        return 0
    if dicom_out is not None:
        raise InputError("--dicom-out: only for volume input (NIfTI, DICOM) or HDF5 k-space")
    if args.volume_index is not None:
        raise InputError("--volume-index: only for 4D NIfTI input")
    truth, scale = None, 1.0
    if args.kspace:
        if args.op != "mri":
            raise InputError(f"--kspace: only with --op mri, got --op {args.op}")
        y, operator, scale = measured_kspace(args.kspace, args.kspace_mask, size)
    elif args.sinogram:
        if args.op != "ct":
            raise InputError(f"--sinogram: only with --op ct, got --op {args.op}")
        y, operator = measured_sinogram(args.sinogram, args.views, size[0])
    else:
        if args.input:
            truth = load_image(args.input, channels, size)[None]
            source = args.input
        else:
            from scoremed.datasets import default_test_image

            truth = default_test_image(DEFAULT_PRIOR_FOR_OP[args.op])[None]
            source = f"the shipped '{DEFAULT_PRIOR_FOR_OP[args.op]}' test image"
        if tuple(truth.shape[1:]) != prior.image_shape:
            raise InputError(f"--prior: '{prior_name}' works on {prior.image_shape} images, the input is "
                             f"{tuple(truth.shape[1:])}")
        operator = make_operator(args.op, prior.image_shape, options)
        y = operator(truth)
        log.info("simulated a %s measurement from %s", args.op, source)
    if not ctx.is_main:
        return 0
    if ctx.is_distributed:
        log.info("one image: nothing to share out over %d processes; rank 0 reconstructs it", ctx.world_size)
    log.info("prior '%s', method %s", prior.name, args.method)
    results, std = run_comparison(y.to(device), operator.to(device), prior, truth=truth.to(device) if truth is not None else None,
                                  n_samples=args.samples, seed=args.seed, progress=not args.no_progress,
                                  **solve_options)
    print(metrics_table(results))
    write_outputs(out, args.op, results, truth, std, scale)
    return 0


def check_dicom_out(folder: Path) -> None:
    """Refuse an existing non-empty folder before any work (a series must not mix with others)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"--dicom-out: {folder} exists and is not an empty folder; choose a new folder")


def write_outputs(out: Path, op: str, results, truth, std, scale: float) -> None:
    """Reconstruction (NIfTI for medical tasks, PNG for natural images), figure and metrics.json."""
    image = results["scoremed"].image[0].cpu() * scale
    if op in ("mri", "ct"):
        save_nifti_slice(out / "reconstruction.nii.gz", image)
    else:
        save_png(out / "reconstruction.png", image)
    save_figure(out / "figure.png", results, truth, std)
    if std is not None:
        std_array = std[0].cpu().numpy()
        atomic_write(out / "std.npy", lambda p: np.save(p, std_array, allow_pickle=False), suffix=".npy")
    if truth is not None:
        metrics = {name: {**r.metrics, "seconds": r.seconds} for name, r in results.items()}
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    log.info("wrote %s", out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

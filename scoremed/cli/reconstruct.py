"""``reconstruct.py``: reconstruct MRI, CT, inpainting or colorization measurements with a score prior.

With no input it simulates the measurement from the shipped test image of the task's
default prior and prints PSNR / SSIM / time for the direct, classical and scoremed results.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from scoremed.checkpoint import load_prior
from scoremed.cli.common import resolve_device, run_cli
from scoremed.errors import InputError
from scoremed.io.images import load_image, save_nifti_slice, save_png
from scoremed.io_atomic import atomic_write_text
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
    src.add_argument("--kspace", help="measured k-space (.npy complex (H, W) or (C, H, W), zeros where unsampled)")
    src.add_argument("--sinogram", help="measured sinogram (.npy (n_views, n_detectors)) at --views evenly spaced angles")
    s = p.add_argument_group("solver")
    s.add_argument("--prior", help="shipped prior name, .safetensors checkpoint or training run folder")
    s.add_argument("--method", default="consistency", help=f"{', '.join(METHODS)} (default consistency)")
    s.add_argument("--steps", type=int, help="predictor steps (default: the prior's stored default)")
    s.add_argument("--snr", type=float, help="Langevin signal-to-noise ratio")
    s.add_argument("--lam", type=float, help="consistency weight in [0, 1]")
    s.add_argument("--samples", type=int, default=1, help="posterior samples; >1 adds a std map")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--out", default=None, help="output folder (default: outputs/<op>)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _load_npy(path: str, argument: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{argument}: cannot read {path} as .npy: {exc}") from None


def measured_kspace(path: str, operator_mask: torch.Tensor | None, size: tuple[int, int]):
    """(y (1, C, H, W) complex64, sampling mask (H, W)) from a k-space .npy file, scaled so the
    zero-filled image peaks near 1; also returns that scale."""
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
    device = resolve_device(args.device)
    prior_name = args.prior or DEFAULT_PRIOR_FOR_OP[args.op]
    prior = load_prior(prior_name, device=device)
    channels, size = prior.image_shape[0], tuple(prior.image_shape[-2:])
    options = OperatorOptions(accel=args.accel, center_fraction=args.center_fraction, mask=args.mask,
                              views=args.views, mask_kind=args.mask_kind, seed=args.seed)
    truth, scale = None, 1.0
    if args.kspace:
        if args.op != "mri":
            raise InputError(f"--kspace: only with --op mri, got --op {args.op}")
        y, operator, scale = measured_kspace(args.kspace, None, size)
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
    log.info("prior '%s', method %s", prior.name, args.method)
    results, std = run_comparison(y.to(device), operator.to(device), prior, truth=truth.to(device) if truth is not None else None,
                                  n_samples=args.samples, method=args.method, steps=args.steps, snr=args.snr,
                                  lam=args.lam, seed=args.seed, device=device, progress=not args.no_progress)
    print(metrics_table(results))
    write_outputs(Path(args.out or Path("outputs") / args.op), args.op, results, truth, std, scale)
    return 0


def write_outputs(out: Path, op: str, results, truth, std, scale: float) -> None:
    """Reconstruction (NIfTI for medical tasks, PNG for natural images), figure and metrics.json."""
    image = results["scoremed"].image[0].cpu() * scale
    if op in ("mri", "ct"):
        save_nifti_slice(out / "reconstruction.nii.gz", image)
    else:
        save_png(out / "reconstruction.png", image)
    save_figure(out / "figure.png", results, truth, std)
    if std is not None:
        np.save(out / "std.npy", std[0].cpu().numpy())
    if truth is not None:
        metrics = {name: {**r.metrics, "seconds": r.seconds} for name, r in results.items()}
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    log.info("wrote %s", out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

"""The volume and multi-slice k-space jobs of ``reconstruct.py``: read, reconstruct every slice in
batches, resample back to the input's grid and units, and write NIfTI (and optionally DICOM).

All outputs are assembled in memory first (:class:`VolumeOutputs`) and written only after
every slice has been reconstructed, each file atomically; an error anywhere writes nothing.

Both jobs take ``ctx`` (a :class:`scoremed.training.distributed.DistContext`): under ``torchrun`` the
batches of slices are shared out over the processes and gathered back in order
(:func:`scoremed.io.slicewise.run_stack`); every rank returns the same :class:`VolumeOutputs`,
and the caller lets rank 0 alone write them.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scoremed.errors import InputError
from scoremed.io.dicom import LPS_TO_RAS, encode_series, series_datasets, write_series
from scoremed.io.kspace import read_kspace, slice_operator
from scoremed.io.slices import IntensityWindow, SliceGeometry, fit_to_size, restore_size
from scoremed.io.slicewise import Batch, StackResult, run_stack
from scoremed.io.volumes import load_volume, nifti_image
from scoremed.io_atomic import atomic_write
from scoremed.reconstruction import make_operator, save_figure

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

    def write(self, out: Path, dicom_out: Path | None = None) -> None:
        """Encode every file in memory, then write them (each atomically)."""
        import gzip

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


def _check_single_channel(prior, what: str) -> int:
    if prior.image_shape[0] != 1:
        raise InputError(f"--prior: {what} need a one-channel prior, '{prior.name}' works on {prior.image_shape}")
    if prior.image_shape[-1] != prior.image_shape[-2]:
        raise InputError(f"--prior: {what} need a square prior, '{prior.name}' works on {prior.image_shape}")
    return int(prior.image_shape[-1])


def reconstruct_volume(args, prior, options, solve_options: dict, ctx=None) -> VolumeOutputs:
    """``--input`` NIfTI / DICOM: every slice from a measurement simulated at the prior's resolution."""
    size = _check_single_channel(prior, "volumes")
    volume = load_volume(args.input, args.volume_index)
    geometry = SliceGeometry.for_volume(volume.data.shape, volume.affine, args.slice_axis)
    window = IntensityWindow.from_data(volume.data, args.intensity, args.ct_window)
    slices = geometry.to_slices(volume.data)
    n, rows, cols = slices.shape
    log.info("volume %s: %s %s, %d slices of %dx%d along RAS axis %d, intensity [%g, %g] -> [0, 1], prior %dx%d%s",
             volume.source, volume.kind, volume.data.shape, n, rows, cols, args.slice_axis, window.low, window.high,
             size, size, f" ({'; '.join(volume.notes)})" if volume.notes else "")
    device = solve_options["device"]
    operator = make_operator(args.op, prior.image_shape, options).to(device)
    batch_size = int(args.batch_size)

    def make_batch(start: int) -> Batch:
        chunk = torch.from_numpy(window.normalise(slices[start:start + batch_size]))[:, None]
        truth = fit_to_size(chunk, size).clamp_(0, 1)
        return Batch(start, operator(truth.to(device)), operator, truth)

    batches = [functools.partial(make_batch, start) for start in range(0, n, batch_size)]

    recon = np.empty((n, rows, cols), dtype=np.float32)

    def on_batch(start: int, images: dict) -> None:
        native = restore_size(images["scoremed"].clamp(0, 1), (rows, cols))[:, 0].numpy()
        recon[start:start + native.shape[0]] = window.restore(native)

    stack = run_stack(batches, n, prior, n_samples=args.samples, seed=args.seed, progress=not args.no_progress,
                      on_batch=on_batch, ctx=ctx, **solve_options)
    std = None
    if stack.std is not None:
        std = geometry.from_slices(restore_size(stack.std, (rows, cols))[:, 0].numpy() * (window.high - window.low))
    info = {"source": volume.source, "kind": volume.kind, "shape": list(volume.data.shape), "slice_axis": args.slice_axis,
            "intensity_window": [window.low, window.high], "prior_size": size, "notes": volume.notes,
            "metrics": "at the prior's resolution, intensities in [0, 1]; psnr over all slices"}
    return VolumeOutputs(stack, geometry.from_slices(recon), volume.affine, volume.header, std, volume.modality,
                         volume.dicom.datasets if volume.dicom is not None and volume.dicom.datasets else None, info)


def reconstruct_kspace_file(args, prior, options, solve_options: dict, ctx=None) -> VolumeOutputs:
    """``--kspace file.h5``: every slice of fastMRI k-space, one slice (operator) at a time."""
    size = _check_single_channel(prior, "k-space files")
    if args.volume_index is not None:
        raise InputError("--volume-index: only for 4D NIfTI input")

    def make_mask(s: int) -> torch.Tensor:
        return make_operator("mri", (1, s, s), options).mask

    data = read_kspace(args.kspace, size, args.kspace_mask, make_mask)
    n, coils = data.kspace.shape[:2]
    log.info("k-space %s: %d slice(s), %s (%d coil(s)), %dx%d; %s", data.source, n,
             "multi-coil" if data.multicoil else "single-coil", coils, *data.original_shape, "; ".join(data.notes))
    device = solve_options["device"]

    def make_batch(i: int) -> Batch:  # each slice has its own coil maps, hence its own operator
        operator = slice_operator(data.kspace[i], data.mask, data.multicoil).to(device)
        truth = None if data.reference is None else data.reference[i:i + 1].clamp(0, 1)
        return Batch(i, data.kspace[i:i + 1].to(device), operator, truth)

    stack = run_stack([functools.partial(make_batch, i) for i in range(n)], n, prior, n_samples=args.samples,
                      seed=args.seed, progress=not args.no_progress, ctx=ctx, **solve_options)
    magnitude = stack.results["scoremed"].image.abs()[:, 0].numpy() * data.scale      # (N, S, S)
    pixel = data.original_shape[1] / size
    affine = LPS_TO_RAS @ np.diag([pixel, pixel, 1.0, 1.0])
    std = None if stack.std is None else (stack.std[:, 0].numpy() * data.scale).transpose(2, 1, 0)
    info = {"source": data.source, "kind": "kspace", "multicoil": data.multicoil, "coils": int(coils),
            "kspace_shape": list(data.original_shape), "prior_size": size, "scale": data.scale, "notes": data.notes,
            "layout": "reconstruction.nii.gz holds (columns, rows, slices); pixel size in original pixels",
            "metrics": "against the fully sampled low-resolution RSS image, intensities / scale"}
    return VolumeOutputs(stack, magnitude.transpose(2, 1, 0).copy(), affine, None, std, "MR", None, info)

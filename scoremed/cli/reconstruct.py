"""``scoremed reconstruct`` (``scripts/reconstruct.py``): reconstruct MRI, CT, inpainting or colorization
measurements with a score prior.

With no input it simulates the measurement from the shipped test image of the task's
default prior and prints PSNR / SSIM / time for the direct, classical and scoremed results;
with the optional bm3d package (``pip install 'scoremed[bm3d]'``) a PnP-BM3D row too for one image
(``--no-extra-baselines``: without it; ``--extra-baselines``: for every slice of a volume as well).

Resolution: with a resolution-free prior (the shipped ones) everything is reconstructed at the
data's own in-plane grid: an image or a volume's slices at their size, ``--kspace`` on the
file's grid (after the exact readout-oversampling crop), ``--sinogram`` at its detector
count; the outputs keep that grid (NIfTI/DICOM: shape, affine, spacing). ``--resize N`` trades
resolution for speed: the data are padded to a square and resampled to N x N (k-space:
its central N x N block), volumes resampled back to their grid. A fixed-size prior always
works on its own grid (the data are resampled to it). Images smaller than the prior's
patches, or of a size the task cannot take (CT: square images), are refused.

Volumes: ``--input vol.nii.gz`` or ``--input dicom_folder/`` reconstructs every slice (along
RAS axis ``--slice-axis``, in batches of ``--batch-size``) from simulated measurements
and writes ``reconstruction.nii.gz`` with the input's shape, affine and intensity units
(``--dicom-out`` adds a derived DICOM series). Measured k-space: ``--kspace file.h5``
(fastMRI single- or multi-coil, see :mod:`scoremed.apps.kspace`) or ``--kspace file.npy``.
Nothing is written unless every slice was reconstructed.

Several processes: ``torchrun --nproc_per_node=P -m scoremed reconstruct --input vol.nii.gz ...``
(or ``--kspace file.h5``) shares the batches of slices out over the P processes (each batch
keeps its seed, ``--seed`` + its first slice) and gathers them in order, so the outputs are
the same as those of one process; only rank 0 prints and writes. A single 2D image is not
split: rank 0 reconstructs it and the other ranks exit.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Mapping

from scoremed.apps.options import ReconstructOptions
from scoremed.apps.reconstruct import reconstruct
from scoremed.io.slices import INTENSITY_MODES
from scoremed.cli import speed
from scoremed.cli.common import flags_in_errors, run_cli
from scoremed.errors import InputError, resolve_device
from scoremed.sampling.methods import METHODS
from scoremed.tasks import TASKS, Task, get_task
from scoremed.distributed import BACKENDS, init_distributed, shutdown

log = logging.getLogger("scoremed")
#: options shared by every task, given once (``--seed``: the sampler's and the random masks')
SHARED = {"seed"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def task_fields(tasks: Mapping[str, Task] = TASKS) -> dict[str, list[tuple[Task, dataclasses.Field]]]:
    """Every task option name (but :data:`SHARED`) with the (task, field) pairs that have it, in task order."""
    owners: dict[str, list[tuple[Task, dataclasses.Field]]] = {}
    for task in tasks.values():
        for f in dataclasses.fields(task.options):
            if f.name not in SHARED:
                owners.setdefault(f.name, []).append((task, f))
    return owners


def _help(pairs: list[tuple[Task, dataclasses.Field]]) -> str:
    """The first task's description with every task's default (``(default: mri 4.0, ct 2.0)`` when they differ)."""
    text = pairs[0][1].metadata.get("help", "")
    defaults = {task.name: f.default for task, f in pairs}
    if len({repr(d) for d in defaults.values()}) > 1:
        return f"{text} (default: {', '.join(f'{name} {d}' for name, d in defaults.items())})"
    tasks = f"{', '.join(defaults)}; " if len(pairs) > 1 else ""
    return f"{text} ({tasks}default {pairs[0][1].default})"


def add_task_arguments(parser: argparse.ArgumentParser, tasks: Mapping[str, Task] = TASKS) -> None:
    """One flag per task option name, in the argument group of the first task that has it. Flags default
    to None (not given): :func:`task_options` fills in the chosen task's own defaults, so tasks sharing an
    option name keep theirs; the help lists each task's default."""
    groups = {}
    for name, pairs in task_fields(tasks).items():
        kinds = {type(f.default) for _, f in pairs}
        if len(kinds) > 1:
            raise TypeError(f"task option {name!r}: tasks {[t.name for t, _ in pairs]} give it different types "
                            f"{sorted(k.__name__ for k in kinds)}; one flag needs one type")
        first = pairs[0][0]
        if first.name not in groups:
            groups[first.name] = parser.add_argument_group(f"{first.name}: {first.summary}")
        groups[first.name].add_argument(_flag(name), type=kinds.pop(), default=None, help=_help(pairs))


def task_options(task: Task, args: argparse.Namespace, tasks: Mapping[str, Task] = TASKS):
    """The task's options dataclass: the flags given, the task's defaults for the others and the
    :data:`SHARED` values; a flag of another task is an InputError naming it and ``--op``'s task."""
    owners = task_fields(tasks)
    given = {name: vars(args)[name] for name in owners if vars(args)[name] is not None}
    own = {f.name for f in dataclasses.fields(task.options)}
    foreign = [name for name in given if name not in own]
    if foreign:
        name = foreign[0]
        flags = ", ".join(_flag(n) for n in sorted(own - SHARED)) or "none"
        raise InputError(f"{_flag(name)}: not an option of --op {task.name} (it belongs to "
                         f"{' and '.join(t.name for t, _ in owners[name])}); the options of {task.name}: {flags}")
    return task.options(**given, **{name: vars(args)[name] for name in SHARED & own})


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--op", default="mri", help=f"task: {', '.join(TASKS)} (default: mri)")
    add_task_arguments(p)
    src = p.add_argument_group("input (default: the shipped test image of the task)")
    src.add_argument("--input", help="image to simulate the measurement from (PNG/JPG/TIFF, .npy, NIfTI, DICOM)")
    src.add_argument("--kspace", help="measured k-space: fastMRI HDF5 (.h5: 'kspace' (slices, H, W) single-coil or "
                                      "(slices, coils, H, W) multi-coil) or .npy complex (H, W) / (C, H, W); "
                                      "zeros where unsampled")
    src.add_argument("--kspace-mask", help="sampling mask .npy ((W,), (1, W) or (H, W)) of --kspace (default: the "
                                           "file's 'mask' dataset, else its non-zero locations)")
    src.add_argument("--sinogram", help="measured sinogram (.npy (n_views, n_detectors)) at --views evenly spaced "
                                        "angles of 180 (or --sinogram-angles); images of n_detectors^2 pixels")
    src.add_argument("--sinogram-angles", help="view angles of --sinogram in radians (.npy (n_views,))")
    src.add_argument("--resize", type=int, default=None, metavar="N",
                     help="speed option: reconstruct on an N x N grid (padded to a square, resampled; volumes "
                          "resampled back) instead of the data's own (default); resolution-free priors only")
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
    s.add_argument("--method", default=None, help=f"{', '.join(METHODS)} (default: the one the prior recommends)")
    s.add_argument("--steps", type=int, help="predictor steps (default: the prior's stored default)")
    s.add_argument("--snr", type=float, help="Langevin signal-to-noise ratio")
    s.add_argument("--lam", type=float, help="consistency weight in [0, 1]")
    s.add_argument("--samples", type=int, default=1, help="posterior samples; >1 adds a std map")
    s.add_argument("--seed", type=int, default=0, help="seed of the sampler and of random masks")
    s.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda if available; under torchrun cuda:LOCAL_RANK)")
    s.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="torch.distributed backend under torchrun: auto = nccl on CUDA, gloo on the CPU")
    p.add_argument("--extra-baselines", action=argparse.BooleanOptionalAction, default=None,
                   help="also compare PnP-BM3D (needs pip install 'scoremed[bm3d]'; ten BM3D calls per image, "
                        "about 35 s at 256x256) in a row of its own (default: for one image when bm3d is "
                        "installed, not for volumes or k-space files)")
    p.add_argument("--out", default=None, help="output folder (default: outputs/<op>)")
    p.add_argument("--no-progress", action="store_true")
    speed.add_sampler_arguments(p)
    speed.add_speed_arguments(p)
    return p


def options_from_args(args: argparse.Namespace) -> ReconstructOptions:
    """The typed job options of the parsed flags (checked)."""
    task = get_task(args.op, "op")
    out = Path(args.out or Path("outputs") / args.op)
    dicom_out = None if args.dicom_out is None else str(args.dicom_out or out / "dicom")
    settings = dict(method=args.method, steps=args.steps, snr=args.snr, lam=args.lam, **speed.solve_options(args))
    return ReconstructOptions(
        op=args.op, operator=task_options(task, args), prior=args.prior, input=args.input, kspace=args.kspace,
        kspace_mask=args.kspace_mask, sinogram=args.sinogram, sinogram_angles=args.sinogram_angles,
        volume_index=args.volume_index, slice_axis=args.slice_axis, intensity=args.intensity,
        ct_window=tuple(args.ct_window), batch_size=args.batch_size, resize=args.resize, samples=args.samples,
        seed=args.seed, progress=not args.no_progress, dicom_out=dicom_out, extra_baselines=args.extra_baselines,
        settings=settings).check()


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    with flags_in_errors(p):
        options = options_from_args(args)
        ctx = init_distributed(resolve_device(args.device) if args.device else None, backend=args.backend)
        try:
            if not ctx.is_main:
                logging.getLogger().setLevel(logging.WARNING)
            options.device = ctx.device if ctx.is_distributed else resolve_device(args.device)
            outputs = reconstruct(options, ctx)
            if outputs is None or not ctx.is_main:
                return 0
            print(outputs.table())
            outputs.write(Path(args.out or Path("outputs") / args.op), options.dicom_out)
            return 0
        finally:
            shutdown(ctx)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

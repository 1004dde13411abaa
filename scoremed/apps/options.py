"""The typed options of a reconstruction job (what ``scoremed reconstruct`` turns its flags into)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoremed.errors import InputError, check_int
from scoremed.io.slices import INTENSITY_MODES
from scoremed.tasks import get_task


@dataclass
class ReconstructOptions:
    """What to reconstruct and how. Errors name these fields.

    Input (at most one): ``input`` (an image or a volume: NIfTI, DICOM folder or file, from
    which the measurement is simulated), ``kspace`` (measured k-space: fastMRI HDF5, or .npy
    with an optional ``kspace_mask`` .npy), ``sinogram`` (.npy (views, detectors), at
    ``sinogram_angles`` or evenly spaced views); none: the shipped test image of the task's
    default prior.

    Resolution (:mod:`scoremed.apps.grid`): a resolution-free prior reconstructs at the data's
    own grid; ``resize`` = N asks for an N x N grid instead (a speed option: padded to a square
    and resampled, volumes resampled back); a fixed-size prior always works on its own grid.

    ``extra_baselines``: also run the classical baselines compared in rows of their own (PnP-BM3D,
    with the optional bm3d package; ten BM3D calls per image, about 35 s at 256 x 256): None runs them
    for one image when their package is installed (a note when not) and not for volumes and
    k-space files (every slice would pay for them); True / False always / never.
    """
    op: str = "mri"                               #: task name (scoremed.tasks.TASKS)
    operator: Any = None                          #: the task's options (None: its defaults)
    prior: str | None = None                      #: shipped name, checkpoint or run folder (None: the task's)
    input: str | None = None
    kspace: str | None = None
    kspace_mask: str | None = None
    sinogram: str | None = None
    sinogram_angles: str | None = None            #: .npy (views,) view angles in radians of ``sinogram``
    volume_index: int | None = None               #: volume of a 4D NIfTI image
    slice_axis: int = 2                           #: RAS axis volumes are sliced along
    intensity: str = "percentile"                 #: percentile | ct (HU window ``ct_window`` -> [0, 1])
    ct_window: tuple[float, float] = (-1000.0, 1000.0)
    batch_size: int = 8                           #: slices reconstructed together
    resize: int | None = None                     #: reconstruct on an N x N grid (None: the data's own)
    samples: int = 1                              #: posterior samples (> 1 adds a std map)
    seed: int = 0
    progress: bool = True
    dicom_out: str | None = None                  #: folder for a derived DICOM series (volumes only)
    extra_baselines: bool | None = None           #: PnP-BM3D rows (None: one image yes, volumes no)
    device: Any = None                            #: torch device of the run (None: the prior's)
    settings: dict[str, Any] = field(default_factory=dict)  #: solver settings by name (method, steps, start, ...;
                                                            #: None: the prior's stored default)

    def check(self) -> "ReconstructOptions":
        """Refuse inconsistent options before any work; fills in the task's default options."""
        from scoremed.settings import settings_for

        task = get_task(self.op, "op")
        if self.operator is None:
            self.operator = task.options()
        self.settings = {key: value for key, value in self.settings.items() if value is not None}
        if "method" in self.settings:   # names and ranges checked before any work (t_start again with the prior)
            settings_for(**self.settings)
        given = [name for name in ("input", "kspace", "sinogram") if getattr(self, name) is not None]
        if len(given) > 1:
            raise InputError(f"{given[0]}: give at most one of input, kspace and sinogram, got {', '.join(given)}")
        check_int(self.samples, "samples", 1)
        check_int(self.batch_size, "batch_size", 1)
        if self.kspace_mask and not self.kspace:
            raise InputError("kspace_mask: only together with kspace")
        if self.sinogram_angles and not self.sinogram:
            raise InputError("sinogram_angles: only together with sinogram")
        if self.resize is not None:
            check_int(self.resize, "resize", 2)
            if self.sinogram:
                raise InputError("resize: not for a measured sinogram (its detector count sets the image size)")
        if self.intensity not in INTENSITY_MODES:
            raise InputError(f"intensity: expected one of {list(INTENSITY_MODES)}, got {self.intensity!r}")
        if self.dicom_out is not None:
            folder = Path(self.dicom_out)
            if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
                raise InputError(f"dicom_out: {folder} exists and is not an empty folder; choose a new folder")
        return self

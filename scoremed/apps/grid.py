"""The pixel grid a reconstruction job works on, and the sizes a prior can reconstruct.

- a **resolution-free** prior (image_shape (C, None, None), e.g. a patch prior) works on the
  data's own grid: an image, a volume's slices, a k-space file or a sinogram are
  reconstructed at the size they were measured at, unless ``resize`` = N asks for N x N;
- a **fixed-size** prior works on its own (H, W) grid only; the data are resampled to it
  (the only way such a prior can be used).

Images smaller than a patch prior's patches, and sizes the task's operator cannot take
(CT needs square images), are refused before anything is computed or written.
"""
from __future__ import annotations

from scoremed.errors import InputError


def job_grid(prior, resize: int | None = None) -> tuple[int, int] | None:
    """(H, W) of the grid the data are resampled to, or None for the data's own grid.

    Fixed-size prior: its (H, W) (``resize``, if given, must equal it). Resolution-free prior:
    None, or (resize, resize).
    """
    if prior.resolution_free:
        if resize is not None and int(resize) < min_size(prior):
            raise InputError(f"resize: {resize} is smaller than the {min_size(prior)} x {min_size(prior)} patches of "
                             f"prior '{prior.name}'")
        return None if resize is None else (int(resize), int(resize))
    grid = tuple(int(s) for s in prior.image_shape[-2:])
    if resize is not None and (int(resize), int(resize)) != grid:
        raise InputError(f"resize: prior '{prior.name}' is a fixed-size {grid[0]} x {grid[1]} prior; the data are "
                         f"always resampled to its grid (resize applies to resolution-free priors)")
    return grid


def min_size(prior) -> int:
    """The smallest image side a prior reconstructs: a patch prior's patch size, else 1."""
    patch = getattr(prior.network, "patch_size", None)
    if patch is None:
        patch = (prior.metadata.get("architecture") or {}).get("patch_size")
    return int(patch) if patch else 1


def check_native_size(prior, shape, what: str, argument: str) -> tuple[int, int]:
    """(H, W) of data reconstructed at their own grid; InputError naming ``argument`` when either side is
    smaller than the prior's patches (``what`` describes the data, e.g. "the slices of t1.nii.gz")."""
    h, w = (int(s) for s in shape[-2:])
    side = min_size(prior)
    if min(h, w) < side:
        raise InputError(f"{argument}: {what} is {h} x {w} pixels, smaller than the {side} x {side} patches of "
                         f"prior '{prior.name}'; use a larger image or upsample it with the resize option "
                         f"(resize >= {side})")
    return h, w


def task_operator(task, image_shape, options, what: str, argument: str):
    """The task's operator for images ``image_shape`` (C, H, W); a size the task cannot take (e.g. a
    non-square image for CT) is an InputError naming ``argument`` and the data's size."""
    try:
        return task.make_operator(tuple(int(s) for s in image_shape), options)
    except InputError as exc:
        if not str(exc).startswith("image_shape"):   # the task's options, not the data's size
            raise
        message = str(exc).split(": ", 1)[-1]
        raise InputError(f"{argument}: {what} ({image_shape[-2]} x {image_shape[-1]} pixels) does not fit the "
                         f"{task.name} task ({message}); crop it, or use the resize option (pads to a square "
                         "and resamples)") from None

"""From a volume to 2D slices at the prior's size and back: orientation, intensity window, size.

Every step is exactly invertible up to the resampling, so a reconstructed slice stack goes
back into the input volume's voxel grid, orientation and intensity units:

1. **orientation** (:class:`SliceGeometry`): the volume is brought to the closest RAS
   orientation (axis flips and permutations only, nibabel's ``io_orientation``), cut
   along RAS axis ``axis`` (0 sagittal, 1 coronal, 2 axial) and each slice is shown the
   way the shipped priors were trained: for axial slices rows run anterior -> posterior and
   columns from the subject's right to left (radiological view, what a standard axial
   DICOM's ``pixel_array`` shows); the other axes likewise with the second remaining axis
   reversed on the rows and the first reversed on the columns. A volume that is one
   voxel thick along some axis (a single 2D slice) is cut along that axis.
2. **intensity** (:class:`IntensityWindow`): ``percentile`` clips to the volume's 0.5th and
   99.5th percentiles and scales to [0, 1]; ``ct`` maps a HU window (default
   [-1000, 1000]) to [0, 1]. The inverse maps [0, 1] back to those units.
3. **size** (:func:`fit_to_size`, :func:`restore_size`): a slice is zero-padded to a
   square (keeping the aspect ratio the prior saw in training) and resized to S x S with
   MONAI's ``Resize`` (area averaging); the way back resizes bilinearly and removes the
   padding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scoremed.errors import InputError
from scoremed.io.images import percentile_window

INTENSITY_MODES = ("percentile", "ct")


@dataclass
class SliceGeometry:
    """The permutation/flip between a volume's voxel axes and display-oriented slices."""
    shape: tuple[int, ...]            # the volume's (X, Y, Z)
    ornt: np.ndarray                  # nibabel orientation of the voxel axes w.r.t. RAS
    axis: int                         # RAS axis the slices are taken along

    @classmethod
    def for_volume(cls, shape, affine: np.ndarray, axis: int = 2, argument: str = "slice_axis") -> "SliceGeometry":
        from nibabel.orientations import io_orientation

        if axis not in (0, 1, 2):
            raise InputError(f"{argument}: expected 0 (sagittal), 1 (coronal) or 2 (axial), got {axis!r}")
        if len(shape) != 3:
            raise InputError(f"shape: expected a 3D volume (X, Y, Z), got {tuple(shape)}")
        geometry = cls(tuple(int(s) for s in shape), io_orientation(np.asarray(affine, dtype=np.float64)), int(axis))
        flat = [a for a, n in enumerate(geometry._canonical_shape()) if n == 1]
        if flat and geometry._canonical_shape()[axis] != 1:
            geometry.axis = flat[0]   # a single slice (2D image): cut along its flat axis, whatever ``axis`` says
        return geometry

    def _canonical_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[int(np.flatnonzero(self.ornt[:, 0] == a)[0])] for a in range(3))

    def slice_shape(self) -> tuple[int, int]:
        """(rows, columns) of one display slice."""
        canon = self._canonical_shape()
        a, b = [d for d in range(3) if d != self.axis]
        return canon[b], canon[a]

    def __len__(self) -> int:
        return self._canonical_shape()[self.axis]

    def to_slices(self, data: np.ndarray) -> np.ndarray:
        """Volume (X, Y, Z) -> display slices (N, rows, cols)."""
        from nibabel.orientations import apply_orientation

        canon = apply_orientation(np.asarray(data), self.ornt)
        stack = np.moveaxis(canon, self.axis, 0)           # (N, a, b)
        return np.ascontiguousarray(stack[:, ::-1, ::-1].transpose(0, 2, 1))

    def from_slices(self, stack: np.ndarray) -> np.ndarray:
        """Display slices (N, rows, cols) -> volume (X, Y, Z) in the original voxel order."""
        from nibabel.orientations import apply_orientation, ornt_transform

        stack = np.asarray(stack)
        if stack.shape != (len(self), *self.slice_shape()):
            raise InputError(f"slices: expected shape {(len(self), *self.slice_shape())}, got {stack.shape}")
        canon = np.moveaxis(stack.transpose(0, 2, 1)[:, ::-1, ::-1], 0, self.axis)
        ras = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)
        return np.ascontiguousarray(apply_orientation(canon, ornt_transform(ras, self.ornt)))


@dataclass
class IntensityWindow:
    """Affine map [low, high] (volume units) <-> [0, 1], clipping outside."""
    low: float
    high: float

    @classmethod
    def from_data(cls, data: np.ndarray, mode: str = "percentile", ct_window=(-1000.0, 1000.0),
                  argument: str = "data") -> "IntensityWindow":
        """``percentile``: the data's 0.5-99.5th percentiles; ``ct``: the HU window ``ct_window``."""
        if mode == "percentile":
            return cls(*percentile_window(data, argument=argument))
        if mode == "ct":
            lo, hi = (float(v) for v in ct_window)
            if not (np.isfinite([lo, hi]).all() and hi > lo):
                raise InputError(f"ct_window: expected two finite HU values low < high, got {list(ct_window)}")
            return cls(lo, hi)
        raise InputError(f"intensity: expected one of {list(INTENSITY_MODES)}, got {mode!r}")

    def normalise(self, x: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(x, dtype=np.float64) - self.low) / (self.high - self.low), 0, 1).astype(np.float32)

    def restore(self, u):
        return self.low + u * (self.high - self.low)


def _square_pad(h: int, w: int) -> tuple[int, int, int, int]:
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return top, side - h - top, left, side - w - left


def fit_to_size(stack: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size): zero-pad to a square, then MONAI Resize (area)."""
    from monai.transforms import Resize

    n, c, h, w = stack.shape
    top, bottom, left, right = _square_pad(h, w)
    padded = torch.nn.functional.pad(stack, (left, right, top, bottom))
    side = padded.shape[-1]
    if side == size:
        return padded.float().contiguous()
    mode = "area" if side > size else "bilinear"
    out = Resize((size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))(
        padded.reshape(n * c, side, side))
    return torch.as_tensor(out).as_subclass(torch.Tensor).reshape(n, c, size, size).float()


def restore_size(stack: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`fit_to_size`: (N, C, S, S) -> (N, C, H, W)."""
    from monai.transforms import Resize

    n, c, s, _ = stack.shape
    h, w = shape
    top, bottom, left, right = _square_pad(h, w)
    side = max(h, w)
    if side != s:
        mode = "area" if s > side else "bilinear"
        stack = Resize((side, side), mode=mode, **({} if mode == "area" else {"align_corners": False}))(
            stack.reshape(n * c, s, s))
        stack = torch.as_tensor(stack).as_subclass(torch.Tensor).reshape(n, c, side, side)
    return stack[..., top:top + h, left:left + w].float().contiguous()

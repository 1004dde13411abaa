"""Test inputs shared by the io, apps and cli tests: nibabel's and pydicom's bundled files (I/O only;
never used for training or tuning) and small synthetic fastMRI-style HDF5 files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from scoremed.operators.mri import fft2c


def _package_dir(name: str) -> Path:
    import importlib

    return Path(importlib.import_module(name).__file__).parent


NIB_DATA = _package_dir("nibabel") / "tests" / "data"
DCM_DATA = _package_dir("pydicom") / "data" / "test_files"
CT_SERIES = DCM_DATA / "dicomdirtests" / "98892001" / "CT5N"     # 5 axial CT slices, 16 x 16
MIXED_SERIES = DCM_DATA / "dicomdirtests" / "98892003" / "MR1"   # 3 files of 3 series


def phantom(h: int, w: int, shift: float = 0.0) -> np.ndarray:
    """An ellipse with a brighter ellipse inside, (h, w) in [0, 1]."""
    yy, xx = np.mgrid[:h, :w]
    yy, xx = (yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2)
    image = ((xx / 0.7) ** 2 + (yy / 0.8) ** 2 < 1) * 0.6
    return image + ((xx - 0.2 - shift) ** 2 / 0.04 + (yy + 0.1) ** 2 / 0.09 < 1) * 0.4


def coil_maps(coils: int, h: int, w: int) -> np.ndarray:
    """Smooth complex coil sensitivities (coils, h, w) centred on the corners."""
    yy, xx = np.mgrid[:h, :w]
    centres = [(0, 0), (0, w), (h, 0), (h, w)][:coils]
    return np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.8 * max(h, w)) ** 2)) * np.exp(1j * c)
                     for c, (cy, cx) in enumerate(centres)])


def write_fastmri(path: Path, slices=2, coils=4, h=48, w=32, multicoil=True, mask=None) -> np.ndarray:
    """A small file with the fastMRI layout: ``kspace`` (slices, [coils,] H, W), optional ``mask`` (W,).
    Returns the magnitude images (slices, H, W)."""
    import h5py

    yy, xx = np.mgrid[:h, :w]
    images = np.stack([phantom(h, w, 0.1 * s) for s in range(slices)])
    objects = images * np.exp(1j * 0.5 * (xx / w + yy / h))       # smooth phase, like real data
    coil_images = coil_maps(coils, h, w)[None] * objects[:, None] if multicoil else objects
    kspace = fft2c(torch.from_numpy(coil_images.astype(np.complex64))).numpy()
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        if mask is not None:
            f.create_dataset("mask", data=mask)
        f.attrs["acquisition"] = "CORPD_FBK"
    return images

"""Real medical images shipped inside Python packages: independent test images, never trained or tuned on.

==================  ==========  ===========================================================
name                size        source
==================  ==========  ===========================================================
``mr-head``         256 x 256   matplotlib sample data ``s1045.ima.gz`` (axial head MR)
``mr-abdomen``      484 x 484   pydicom-data ``MR-SIEMENS-DICOM-WithOverlays.dcm``
``ct-head``         512 x 512   pydicom ``J2K_pixelrep_mismatch.dcm`` (head CT)
``ct-head-2``       512 x 512   pydicom-data ``693_UNCR.dcm`` (head CT, 0.48 mm pixels)
``ct-abdomen``      512 x 512   pydicom-data ``explicit_VR-UN.dcm`` (pancreas CT)
==================  ==========  ===========================================================

MR magnitudes are scaled to [0, 1] by their 0.5 / 99.5 percentiles; CT values are rescaled
to HU and windowed like the ``ct-phantom`` prior, [-1000, 1000] HU -> [0, 1]. Every image
is returned at the scanner's own grid as a float32 tensor (1, H, W).
"""
from __future__ import annotations

import numpy as np
import torch

from scoremed.errors import InputError
from scoremed.io.images import to_unit_range

MR = {"mr-head": ("matplotlib", "s1045.ima.gz"), "mr-abdomen": ("pydicom", "MR-SIEMENS-DICOM-WithOverlays.dcm")}
CT = {"ct-head": ("pydicom", "J2K_pixelrep_mismatch.dcm"), "ct-head-2": ("pydicom", "693_UNCR.dcm"),
      "ct-abdomen": ("pydicom", "explicit_VR-UN.dcm")}
HU_WINDOW = (-1000.0, 1000.0)


def _matplotlib_mr(name: str) -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data(name) as f:
        return np.frombuffer(f.read(), np.uint16).reshape(256, 256).astype(np.float64)


def _dicom(name: str) -> tuple[np.ndarray, object]:
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        raise InputError(f"real image: {name} is not available (install pydicom-data)")
    ds = pydicom.dcmread(path)
    return ds.pixel_array.astype(np.float64), ds


def real_image(name: str) -> torch.Tensor:
    """The real test image ``name`` (see the module table) as float32 (1, H, W) in [0, 1]."""
    if name in MR:
        source, file = MR[name]
        data = _matplotlib_mr(file) if source == "matplotlib" else _dicom(file)[0]
        return torch.from_numpy(to_unit_range(data))[None]
    if name in CT:
        data, ds = _dicom(CT[name][1])
        hu = data * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
        lo, hi = HU_WINDOW
        return torch.from_numpy(((np.clip(hu, lo, hi) - lo) / (hi - lo)).astype(np.float32))[None]
    raise InputError(f"real image: expected one of {sorted(MR) + sorted(CT)}, got {name!r}")


def real_images(modality: str) -> dict[str, torch.Tensor]:
    """Every real test image of ``modality`` ("mr" or "ct") by name."""
    names = {"mr": MR, "ct": CT}.get(modality)
    if names is None:
        raise InputError(f"modality: expected 'mr' or 'ct', got {modality!r}")
    return {name: real_image(name) for name in names}

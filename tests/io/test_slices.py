"""Volume <-> prior-sized 2D slices: orientation round trips, display orientation, size, intensity."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from medical_files import CT_SERIES, NIB_DATA  # noqa: E402
from scoremed.errors import InputError  # noqa: E402
from scoremed.io.dicom import read_series  # noqa: E402
from scoremed.io.slices import IntensityWindow, SliceGeometry, fit_to_size, restore_size  # noqa: E402
from scoremed.io.volumes import load_volume  # noqa: E402


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_geometry_is_an_exact_round_trip(axis):
    volume = load_volume(NIB_DATA / "anatomical.nii")
    geometry = SliceGeometry.for_volume(volume.data.shape, volume.affine, axis)
    slices = geometry.to_slices(volume.data)
    assert slices.shape == (len(geometry), *geometry.slice_shape())
    assert np.array_equal(geometry.from_slices(slices), volume.data)


def test_axial_dicom_slices_are_shown_like_pixel_array():
    from pydicom.pixels import apply_modality_lut

    series = read_series(CT_SERIES)
    slices = SliceGeometry.for_volume(series.data.shape, series.affine, 2).to_slices(series.data)
    files = sorted((pydicom.dcmread(p) for p in CT_SERIES.iterdir()), key=lambda d: float(d.ImagePositionPatient[2]))
    for k, ds in enumerate(files):
        np.testing.assert_array_equal(slices[k], apply_modality_lut(ds.pixel_array, ds))


def test_fit_and_restore_size_keep_shape_and_aspect():
    x = torch.rand(3, 1, 20, 12)
    small = fit_to_size(x, 16)
    assert small.shape == (3, 1, 16, 16)
    back = restore_size(small, (20, 12))
    assert back.shape == x.shape
    constant = restore_size(fit_to_size(torch.full((1, 1, 20, 12), 0.5), 16), (20, 12))
    assert torch.allclose(constant[..., 3:-3, 3:-3], torch.tensor(0.5), atol=1e-5)


def test_intensity_windows_map_to_the_unit_range_and_back():
    window = IntensityWindow(-1000.0, 1000.0)
    assert window.restore(window.normalise(np.array([0.0])))[0] == pytest.approx(0.0, abs=0.1)
    data = np.arange(1000, dtype=np.float64)
    lo, hi = np.percentile(data, [0.5, 99.5])
    assert (IntensityWindow.from_data(data).low, IntensityWindow.from_data(data).high) == (lo, hi)
    assert IntensityWindow.from_data(data, "ct", (-500, 500)) == IntensityWindow(-500.0, 500.0)
    sparse = np.zeros(1000)
    sparse[0] = 7.0          # percentiles coincide: the window falls back to (min, max)
    assert IntensityWindow.from_data(sparse) == IntensityWindow(0.0, 7.0)
    with pytest.raises(InputError, match="^data: the image is constant"):
        IntensityWindow.from_data(np.ones(10))
    with pytest.raises(InputError, match="^ct_window:"):
        IntensityWindow.from_data(data, "ct", (1, 1))
    with pytest.raises(InputError, match="^intensity:"):
        IntensityWindow.from_data(data, "minmax")
    with pytest.raises(InputError, match="^slice_axis:"):
        SliceGeometry.for_volume((4, 4, 4), np.eye(4), 3)

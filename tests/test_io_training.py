"""User files as training data (issue 6): discovery, MONAI loading/transforms/caching, bad input."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")
h5py = pytest.importorskip("h5py")

from scoremed.configs import CONFIG_DIR  # noqa: E402
from scoremed.training.config import DataConfig, load_config  # noqa: E402
from scoremed.errors import InputError  # noqa: E402
from scoremed.data import full_resolution_dataset  # noqa: E402
from scoremed.data.files import discover, file_dataset  # noqa: E402
from scoremed.training import Trainer  # noqa: E402
from scoremed.data import training_dataset  # noqa: E402

NIB_DATA = Path(nib.__file__).parent / "tests" / "data"
DCM_DATA = Path(pydicom.__file__).parent / "data" / "test_files"
CT_SERIES = DCM_DATA / "dicomdirtests" / "98892001" / "CT5N"


@pytest.fixture
def mixed_folder(tmp_path):
    """NIfTI with empty slices, a DICOM series next to another series, PNG, TIFF, .npy, fastMRI .h5."""
    from skimage.io import imsave

    root = tmp_path / "data"
    (root / "nifti").mkdir(parents=True)
    volume = np.zeros((20, 24, 10), np.float32)
    volume[4:16, 5:20, 3:7] = np.random.default_rng(0).uniform(100, 200, (12, 15, 4))
    nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2.0, 3.0, 1.0])), root / "nifti" / "vol.nii.gz")
    dicom = root / "dicom"
    shutil.copytree(CT_SERIES, dicom)
    shutil.copy(DCM_DATA / "CT_small.dcm", dicom / "other_series.dcm")     # a second series in the folder
    (dicom / "README").write_text("not DICOM, skipped")
    rng = np.random.default_rng(1)
    imsave(root / "photo.png", (rng.random((20, 30)) * 255).astype(np.uint8), check_contrast=False)
    imsave(root / "rgb.tif", (rng.random((12, 12, 3)) * 65535).astype(np.uint16), check_contrast=False)
    np.save(root / "stack.npy", rng.random((3, 10, 12)).astype(np.float32))
    with h5py.File(root / "knee.h5", "w") as f:   # readout oversampled 2x: 32 x 16 k-space
        f.create_dataset("kspace", data=_centred_fft(KNEE_COILS).astype(np.complex64))
        f.create_dataset("reconstruction_rss", data=np.zeros((2, 16, 16), np.float32))  # kspace wins
    return root


KNEE_COILS = (np.random.default_rng(5).normal(size=(2, 2, 32, 16))
              + 1j * np.random.default_rng(6).normal(size=(2, 2, 32, 16)))    # (slices, coils, H, W)


def _centred_fft(images: np.ndarray) -> np.ndarray:
    """Orthonormal centred 2D FFT over the last two axes (fastMRI convention), NumPy only."""
    shifted = np.fft.ifftshift(images, axes=(-2, -1))
    return np.fft.fftshift(np.fft.fft2(shifted, norm="ortho"), axes=(-2, -1))


def test_discover_groups_dicom_series_and_skips_other_files(mixed_folder):
    sources = discover([str(mixed_folder)])
    kinds = sorted(s["kind"] for s in sources)
    assert kinds == ["dicom", "dicom", "hdf5", "image", "image", "nifti", "npy"]
    series = sorted(len(s["path"]) for s in sources if s["kind"] == "dicom")
    assert series == [1, 5]


def test_file_dataset_items_are_unit_range_prior_sized_slices(mixed_folder):
    config = DataConfig(paths=[str(mixed_folder)], image_size=16, channels=1)
    dataset = file_dataset(config)
    # nifti: 4 non-empty of 10 slices; dicom: 5 + 1; png 1, tif 1, npy 3, h5 2
    assert len(dataset) == 4 + 6 + 1 + 1 + 3 + 2
    items = torch.stack([dataset[i] for i in range(len(dataset))])
    assert items.shape == (len(dataset), 1, 16, 16) and items.dtype == torch.float32
    assert float(items.min()) >= 0 and float(items.max()) <= 1
    assert bool((items.flatten(1).amax(1) > 0.05).all())            # empty slices were dropped
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_full_resolution_files_keep_each_files_grid(mixed_folder):
    dataset = full_resolution_dataset(DataConfig(paths=[str(mixed_folder)], channels=1))
    shapes = [tuple(dataset[i].shape) for i in range(len(dataset))]
    assert len(dataset) == 4 + 6 + 1 + 1 + 3 + 2
    expected = ([(1, *dicom_shape(CT_SERIES))] * 5 + [(1, *dicom_shape(DCM_DATA / "CT_small.dcm"))] + [(1, 16, 16)] * 2 + [(1, 24, 20)] * 4 + [(1, 10, 12)] * 3
                + [(1, 20, 30), (1, 12, 12)])
    assert sorted(shapes) == sorted(expected)           # mixed sizes, nothing resized
    for i in range(len(dataset)):
        x = dataset[i]
        assert x.dtype == torch.float32 and float(x.min()) >= 0 and float(x.max()) <= 1
    # fastMRI: RSS of the IFFT, central 16 of 32 rows (readout oversampling), file-wise percentile scaling
    rss = np.sqrt((np.abs(KNEE_COILS) ** 2).sum(1))[:, 8:24]
    lo, hi = np.percentile(rss, [0.5, 99.5])
    reference = np.clip((rss - lo) / (hi - lo), 0, 1)
    knee = dataset.stacks[[s["kind"] for s in dataset.sources].index("hdf5")]
    assert np.allclose(knee[:, 0].numpy(), reference, atol=1e-4)


def dicom_shape(path) -> tuple[int, int]:
    """(Rows, Columns) of a DICOM file or of the first file of a series folder, read by pydicom."""
    path = Path(path)
    first = path if path.is_file() else sorted(path.iterdir())[0]
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    return int(ds.Rows), int(ds.Columns)


def test_ct_window_channels_and_slice_axis(mixed_folder):
    ct = file_dataset(DataConfig(paths=[str(CT_SERIES)], image_size=16, intensity="ct", ct_window=[-1000, 1000]))
    from scoremed.io.dicom import read_series

    hu = read_series(CT_SERIES).data
    expected = np.clip((hu + 1000) / 2000, 0, 1)
    assert float(ct[0].mean()) == pytest.approx(float(expected[..., 0].mean()), abs=0.02)
    rgb = file_dataset(DataConfig(paths=[str(mixed_folder / "rgb.tif"), str(mixed_folder / "photo.png")],
                                  image_size=16, channels=3))
    assert rgb[0].shape == (3, 16, 16) and rgb[1].shape == (3, 16, 16)
    sagittal = file_dataset(DataConfig(paths=[str(NIB_DATA / "anatomical.nii")], image_size=16, slice_axis=0))
    assert len(sagittal) <= 33                               # x has 33 voxels
    axial = file_dataset(DataConfig(paths=[str(NIB_DATA / "anatomical.nii")], image_size=16, slice_axis=2))
    assert len(axial) <= 25


def test_multi_worker_loader_and_trainer_on_files(mixed_folder, tmp_path):
    config = load_config(CONFIG_DIR / "smoke.yaml")
    config.data = dataclasses.replace(config.data, paths=[str(mixed_folder)], num_workers=2)
    dataset = training_dataset(config)
    loader = DataLoader(dataset, batch_size=4, shuffle=False, num_workers=2)
    batches = list(loader)
    assert sum(len(b) for b in batches) == len(dataset)
    assert torch.equal(batches[0][1], dataset[1])
    config.data = dataclasses.replace(config.data, num_workers=0)
    summary = Trainer(config, training_dataset(config), tmp_path / "run", device="cpu", progress=False).train(2)
    assert summary["step"] == 2 and np.isfinite(summary["loss"])


def test_train_cli_takes_data_options(mixed_folder, tmp_path):
    from scoremed.cli.train import main

    assert main(["--config", "smoke", "--data", str(mixed_folder / "nifti"), "--slice-axis", "1",
                 "--intensity", "ct", "--ct-window", "0", "300", "--steps", "1", "--out", str(tmp_path / "run"),
                 "--device", "cpu", "--no-progress"]) == 0


def test_bad_training_data_is_named(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no training images"):
        file_dataset(DataConfig(paths=[str(empty)]))
    with pytest.raises(InputError, match="not found"):
        file_dataset(DataConfig(paths=[str(tmp_path / "missing")]))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="unsupported file type"):
        file_dataset(DataConfig(paths=[str(text)]))
    with pytest.raises(InputError, match="MR_truncated"):
        file_dataset(DataConfig(paths=[str(DCM_DATA / "MR_truncated.dcm")], image_size=16))
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes((NIB_DATA / "example4d.nii.gz").read_bytes()[:400])
    with pytest.raises(InputError, match="broken.nii.gz"):
        file_dataset(DataConfig(paths=[str(broken)], image_size=16))
    blank = tmp_path / "blank.npy"
    np.save(blank, np.zeros((4, 8, 8), np.float32))
    with pytest.raises(InputError, match="no non-empty slices"):
        file_dataset(DataConfig(paths=[str(blank)], image_size=16))
    with pytest.raises(InputError, match="intensity"):
        file_dataset(DataConfig(paths=[str(CT_SERIES)], intensity="hu"))

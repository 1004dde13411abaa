"""User files as training data (``DataConfig.paths``): a MONAI loading and caching pipeline.

Accepted, as files or found recursively in folders:

=================  =======================================================================
NIfTI              ``.nii``, ``.nii.gz``: 3D volumes (4D: every volume), MONAI ``NibabelReader``
DICOM              series (grouped by SeriesInstanceUID, so one folder may hold several),
                   single or multi-frame files; :class:`DicomSeriesReader` (pydicom)
fastMRI HDF5       ``.h5``: the root-sum-of-squares of the IFFT of ``kspace`` (rows cropped to
                   the central W when H > W: readout oversampling), else ``reconstruction_rss``
                   or ``reconstruction_esc``; :class:`FastMRIReader`
images             PNG, JPG, TIFF, BMP (MONAI ``PILReader``)
NumPy              ``.npy``: (H, W), (C, H, W) with C = channels, (H, W, 3|4) RGB(A), (N, H, W)
                   a stack of N gray slices, (N, C, H, W) N images (MONAI ``NumpyReader``)
=================  =======================================================================

Per file, MONAI transforms (cached once by a ``CacheDataset`` with ``num_workers``
threads) turn it into training slices:

1. ``LoadImage`` with the reader above;
2. volumes are cut into 2D slices along RAS axis ``slice_axis`` and shown like the built-in
   data (:class:`scoremed.io.slices.SliceGeometry`, the same code reconstruction uses);
3. intensities: ``percentile`` -> ``ScaleIntensityRangePercentiles`` (0.5 ... 99.5 % of the
   whole file to [0, 1], clipped), ``ct`` -> ``ScaleIntensityRange`` of the HU window
   ``ct_window`` to [0, 1] (DICOM rescale slope/intercept applied first);
4. empty slices (fewer than 1 % of pixels above 0.05 after scaling) are dropped;
5. channels matched to the prior (RGB -> mean for gray priors, gray -> repeated for RGB);
6. fixed size: zero-padded to a square and resized to ``image_size`` (MONAI ``Resize``,
   area); native (``native=True``): left at the file's own in-plane grid.

The data set is map-style: item ``i`` is slice ``i`` of all files in discovery order, a
float32 tensor (C, S, S) in [0, 1], or (C, H, W) with each file's own H, W in native mode;
the cached slices stay in memory (H*W*C*4 bytes each).
"""
from __future__ import annotations

import bisect
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from scoremed.errors import InputError
from scoremed.io.dicom import group_series, is_dicom_file, read_series
from scoremed.io.fastmri import is_hdf5
from scoremed.io.nifti import is_nifti
from scoremed.io.slices import INTENSITY_MODES, SliceGeometry, fit_to_size

log = logging.getLogger("scoremed")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
EMPTY_LEVEL, EMPTY_FRACTION = 0.05, 0.01
ARGUMENT = "data.paths"


def _kind(path: Path) -> str | None:
    if is_nifti(path):
        return "nifti"
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    if path.suffix.lower() == ".npy":
        return "npy"
    if is_hdf5(path):
        return "hdf5"
    if is_dicom_file(path):
        return "dicom"
    return None


def discover(paths: list[str]) -> list[dict]:
    """Training sources ``{"kind", "path"}`` (``path`` a tuple of files for DICOM) in a fixed order."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    sources: list[dict] = []
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise InputError(f"{ARGUMENT}: not found: {root}")
        if root.is_file():
            kind = _kind(root)
            if kind is None:
                raise InputError(f"{ARGUMENT}: unsupported file type {root.name!r}; expected NIfTI, DICOM, fastMRI "
                                 f"HDF5 (.h5), PNG/JPG/TIFF/BMP or .npy")
            sources.append({"kind": kind, "path": (str(root),) if kind == "dicom" else str(root)})
            continue
        found = 0
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            dicom = []
            for name in sorted(files):
                if name.startswith("."):
                    continue
                path = Path(folder) / name
                kind = _kind(path)
                if kind == "dicom":
                    dicom.append(path)
                elif kind is not None:
                    sources.append({"kind": kind, "path": str(path)})
                    found += 1
            for series in group_series(dicom, ARGUMENT):
                sources.append({"kind": "dicom", "path": tuple(str(p) for p in series)})
                found += 1
        if not found:
            raise InputError(f"{ARGUMENT}: no training images in the folder {root} (NIfTI, DICOM, .h5, PNG/JPG/TIFF, "
                             ".npy)")
    if not sources:
        raise InputError(f"{ARGUMENT}: no training files given")
    return sources


# --- MONAI readers for DICOM series and fastMRI files --------------------------------------
def _reader_base():
    from monai.data import ImageReader

    return ImageReader


class DicomSeriesReader(_reader_base()):
    """MONAI ``ImageReader`` for one DICOM series (files of one SeriesInstanceUID, or a folder)
    via :func:`scoremed.io.dicom.read_series`: data (columns, rows, slices), RAS affine."""

    def verify_suffix(self, filename) -> bool:
        names = filename if isinstance(filename, (list, tuple)) else [filename]
        return all(Path(n).is_dir() or is_dicom_file(n) for n in names)

    def read(self, data, **kwargs):
        files = list(data) if isinstance(data, (list, tuple)) else data
        return read_series(files if isinstance(files, list) and len(files) > 1 else
                           (files[0] if isinstance(files, list) else files), ARGUMENT, strict=False)

    def get_data(self, img):
        meta = {"affine": img.affine.copy(), "original_affine": img.affine.copy(),
                "spatial_shape": np.asarray(img.data.shape), "original_channel_dim": float("nan")}
        return img.data, meta


class FastMRIReader(_reader_base()):
    """MONAI ``ImageReader`` for fastMRI HDF5: (slices, H, W) magnitude images."""

    def verify_suffix(self, filename) -> bool:
        return is_hdf5(str(filename))

    def read(self, data, **kwargs):
        import h5py

        path = Path(str(data[0] if isinstance(data, (list, tuple)) else data))
        try:
            with h5py.File(path, "r") as f:
                if "kspace" not in f:
                    for key in ("reconstruction_rss", "reconstruction_esc"):
                        if key in f:
                            return np.asarray(f[key][()], dtype=np.float32)
                    raise InputError(f"{ARGUMENT}: {path} has none of kspace, reconstruction_rss, "
                                     f"reconstruction_esc (keys: {sorted(f.keys())})")
                kspace = np.asarray(f["kspace"][()])
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{ARGUMENT}: cannot read {path} as HDF5 ({type(exc).__name__}: {exc})") from None
        return _rss_images(kspace, path)

    def get_data(self, img):
        return img, {"affine": np.eye(4), "spatial_shape": np.asarray(img.shape), "original_channel_dim": float("nan")}


def _rss_images(kspace: np.ndarray, path: Path) -> np.ndarray:
    from scoremed.operators import rss
    from scoremed.operators.mri import ifft2c

    if not np.iscomplexobj(kspace) or kspace.ndim not in (3, 4):
        raise InputError(f"{ARGUMENT}: {path}: expected complex kspace (slices, [coils,] H, W), got "
                         f"{kspace.dtype} {kspace.shape}")
    k = torch.from_numpy(kspace.astype(np.complex64))
    k = k[:, None] if k.ndim == 3 else k
    images = rss(ifft2c(k), keepdim=False)
    h, w = images.shape[-2:]
    if h > w:  # readout oversampling: keep the central square field of view
        images = images[:, h // 2 - w // 2:h // 2 - w // 2 + w]
    return images.numpy()


# --- transforms --------------------------------------------------------------------------
def _transform_base():
    from monai.transforms import Transform

    return Transform


class LoadSource(_transform_base()):
    """``{"kind", "path"}`` -> ``{"image": loaded array/MetaTensor}`` with MONAI ``LoadImage``."""

    def __init__(self):
        from monai.data import NibabelReader, NumpyReader, PILReader
        from monai.transforms import LoadImage

        self.readers = {"nifti": NibabelReader(), "dicom": DicomSeriesReader(), "hdf5": FastMRIReader(),
                        "image": PILReader(reverse_indexing=False), "npy": NumpyReader()}
        self.loaders = {k: LoadImage(reader=r, image_only=True, ensure_channel_first=False, dtype=np.float32)
                        for k, r in self.readers.items()}
        for kind, loader in self.loaders.items():   # only the reader of the kind, no fallbacks
            loader.readers = [self.readers[kind]]

    def __call__(self, item: dict) -> dict:
        try:
            image = self.loaders[item["kind"]](item["path"])
        except Exception:
            # LoadImage reports reader failures as text; read again directly for the real cause
            raise self._cause(item) from None
        return {**item, "image": image}

    def _cause(self, item: dict) -> InputError:
        try:
            self.readers[item["kind"]].read(item["path"])
        except InputError as exc:
            return exc
        except Exception as exc:
            message = str(exc).strip().splitlines()
            return InputError(f"{ARGUMENT}: cannot read {_name(item)} ({type(exc).__name__}: "
                              f"{message[-1] if message else ''})")
        return InputError(f"{ARGUMENT}: cannot load {_name(item)}")


def _name(item: dict) -> str:
    path = item["path"]
    return f"the DICOM series in {Path(path[0]).parent} ({len(path)} file(s))" if isinstance(path, tuple) else path


def _input_error(exc: BaseException) -> InputError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, InputError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class ToSlices(_transform_base()):
    """Loaded file -> display-oriented 2D slices (N, C, H, W) float32 in file units."""

    def __init__(self, axis: int, channels: int):
        self.axis, self.channels = axis, channels

    def __call__(self, item: dict) -> dict:
        image = item["image"]
        array = np.asarray(image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else image, np.float32)
        kind = item["kind"]
        if not np.isfinite(array).all():
            raise InputError(f"{ARGUMENT}: {_name(item)} contains NaN or Inf")
        if kind in ("nifti", "dicom"):
            affine = np.asarray(image.affine if hasattr(image, "affine") else np.eye(4), dtype=np.float64)
            volumes = array[..., None] if array.ndim == 3 else array
            if volumes.ndim == 2:
                volumes = volumes[..., None, None]
            if volumes.ndim != 4:
                raise InputError(f"{ARGUMENT}: {_name(item)}: expected a 2D, 3D or 4D image, got {array.shape}")
            geometry = SliceGeometry.for_volume(volumes.shape[:3], affine, self.axis, argument="slice_axis")
            stack = np.concatenate([geometry.to_slices(volumes[..., t]) for t in range(volumes.shape[3])])[:, None]
        elif kind == "hdf5":
            stack = array[:, None]
        elif kind == "image":
            stack = (array[None, None] if array.ndim == 2 else np.moveaxis(array, -1, 0)[None])
        else:  # npy
            stack = self._npy(array, item)
        return {**item, "image": torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))}

    def _npy(self, array: np.ndarray, item: dict) -> np.ndarray:
        if array.ndim == 2:
            return array[None, None]
        if array.ndim == 3 and array.shape[0] == self.channels:
            return array[None]
        if array.ndim == 3 and array.shape[-1] in (3, 4):
            return np.moveaxis(array, -1, 0)[None]
        if array.ndim == 3:
            return array[:, None]
        if array.ndim == 4:
            return array
        raise InputError(f"{ARGUMENT}: {_name(item)}: expected (H, W), (C, H, W), (H, W, 3), (N, H, W) or "
                         f"(N, C, H, W), got {array.shape}")


class ScaleIntensity(_transform_base()):
    """MONAI ``ScaleIntensityRangePercentiles`` / ``ScaleIntensityRange`` over the whole file."""

    def __init__(self, mode: str, ct_window):
        from monai.transforms import ScaleIntensityRange, ScaleIntensityRangePercentiles

        if mode == "percentile":
            self.scale = ScaleIntensityRangePercentiles(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True)
        elif mode == "ct":
            lo, hi = (float(v) for v in ct_window)
            if not hi > lo:
                raise InputError(f"ct_window: expected [low, high] with low < high, got {list(ct_window)}")
            self.scale = ScaleIntensityRange(a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True)
        else:
            raise InputError(f"intensity: expected one of {list(INTENSITY_MODES)}, got {mode!r}")

    def __call__(self, item: dict) -> dict:
        x = torch.as_tensor(self.scale(item["image"])).as_subclass(torch.Tensor).float()
        return {**item, "image": torch.nan_to_num(x, nan=0.0).clamp_(0, 1)}


class DropEmpty(_transform_base()):
    """Drop slices with fewer than 1 % of pixels above 0.05."""

    def __call__(self, item: dict) -> dict:
        x = item["image"]
        keep = (x.amax(1) > EMPTY_LEVEL).flatten(1).float().mean(1) >= EMPTY_FRACTION
        return {**item, "image": x[keep], "empty": int((~keep).sum())}


def match_channels(x: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    """Images (N, C, H, W) as (N, channels, H, W): alpha dropped, RGB to gray by the channel mean, gray
    copied into RGB; any other mismatch is an InputError naming ``what``."""
    c = x.shape[1]
    if c == 4:
        x, c = x[:, :3], 3
    if c == channels:
        return x
    if channels == 1 and c == 3:
        return x.mean(1, keepdim=True)
    if channels == 3 and c == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    raise InputError(f"{what} has {c} channels, the prior needs {channels}")


class MatchChannels(_transform_base()):
    def __init__(self, channels: int):
        self.channels = channels

    def __call__(self, item: dict) -> dict:
        return {**item, "image": match_channels(item["image"], self.channels, f"{ARGUMENT}: {_name(item)}")}


class FitSize(_transform_base()):
    def __init__(self, size: int):
        self.size = size

    def __call__(self, item: dict) -> dict:
        x = item["image"]
        if x.shape[0]:
            x = fit_to_size(x, self.size).clamp_(0, 1)
        else:
            x = x.new_zeros((0, x.shape[1], self.size, self.size))
        return {**item, "image": x.contiguous()}


# --- the data set ------------------------------------------------------------------------
class FileSliceDataset(Dataset):
    """Map-style data set over the non-empty slices of the training files (see the module docstring)."""

    def __init__(self, stacks: list[torch.Tensor], sources: list[dict]):
        self.stacks, self.sources = stacks, sources
        self.offsets = np.cumsum([0] + [len(s) for s in stacks]).tolist()

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, index: int) -> torch.Tensor:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a data set of length {len(self)}")
        i = bisect.bisect_right(self.offsets, index) - 1
        return self.stacks[i][index - self.offsets[i]]


def file_transforms(data_config, native: bool = False):
    """The MONAI ``Compose`` of steps 1-6 of the module docstring (step 6 only if not ``native``)."""
    from monai.transforms import Compose

    if int(data_config.channels) not in (1, 3):
        raise InputError(f"channels: expected 1 or 3, got {data_config.channels!r}")
    steps = [LoadSource(), ToSlices(int(data_config.slice_axis), int(data_config.channels)),
             ScaleIntensity(data_config.intensity, data_config.ct_window), DropEmpty(),
             MatchChannels(int(data_config.channels))]
    if not native:
        if int(data_config.image_size) < 8:
            raise InputError(f"image_size: expected an integer >= 8, got {data_config.image_size!r}")
        steps.append(FitSize(int(data_config.image_size)))
    return Compose(steps)


def file_dataset(data_config, progress: bool = False, native: bool = False) -> FileSliceDataset:
    """The training slices of ``data_config.paths`` (see the module docstring); ``native``: no resizing."""
    from monai.data import CacheDataset

    if data_config.slice_axis not in (0, 1, 2):
        raise InputError(f"slice_axis: expected 0, 1 or 2, got {data_config.slice_axis!r}")
    transform = file_transforms(data_config, native)
    sources = discover(list(data_config.paths))
    try:
        cache = CacheDataset(sources, transform=transform, num_workers=max(1, int(data_config.num_workers)),
                             copy_cache=False, progress=progress)
        items = [cache[i] for i in range(len(cache))]
    except Exception as exc:
        cause = _input_error(exc)
        if cause is not None:
            raise cause from None
        raise
    stacks = [item["image"] for item in items]
    empty = sum(item.get("empty", 0) for item in items)
    for source, stack in zip(sources, stacks):
        if len(stack) == 0:
            log.warning("%s: no non-empty slices in %s", ARGUMENT, _name(source))
    dataset = FileSliceDataset(stacks, sources)
    if len(dataset) == 0:
        raise InputError(f"{ARGUMENT}: no non-empty slices in {len(sources)} file(s) of {list(data_config.paths)}")
    size = "native size" if native else f"{data_config.image_size} x {data_config.image_size}"
    log.info("training data: %d slice(s) of %d file(s)/series (%d empty slice(s) skipped), %s, %d channel(s)",
             len(dataset), len(sources), empty, size, data_config.channels)
    return dataset

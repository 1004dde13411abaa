"""DICOM in and out with pydicom: one series as a volume, and a derived series written back.

Reading (:func:`read_series`) takes a folder holding one series, a single-frame file or a
multi-frame file. Files that are not DICOM at all (README, DICOMDIR without images) are
skipped; a truncated or corrupt image file, images of several series, or slices with
different sizes or orientations are errors that name the file, never silently dropped
slices. Slices are sorted by their position along the slice normal (InstanceNumber when
the geometry is missing).

The volume is stored like a NIfTI image: ``data[i, j, k]`` with i = column, j = row of
slice k (so ``data[:, :, k].T`` is the slice's ``pixel_array``), in modality units
(RescaleSlope/Intercept applied), and ``affine`` maps (i, j, k) to RAS millimetres
(DICOM's LPS with x and y negated), as nibabel and MONAI do.

Writing (:func:`series_datasets` + :func:`write_series`) produces one file per slice with a
new SeriesInstanceUID and SOPInstanceUIDs, ImageType ``DERIVED\\SECONDARY``, the geometry
tags (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness) of the
source slice (or derived from the affine for non-DICOM input) and 16-bit pixels with
RescaleSlope/RescaleIntercept restoring the floating-point intensities.
"""
from __future__ import annotations

import copy
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scoremed.errors import InputError
from scoremed.io.atomic import atomic_write

log = logging.getLogger("scoremed")

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: attributes describing stored pixel values that no longer hold for a derived image
_PIXEL_ATTRIBUTES = ("LargestImagePixelValue", "SmallestImagePixelValue", "PixelPaddingValue",
                     "PixelPaddingRangeLimit", "WindowCenter", "WindowWidth", "WindowCenterWidthExplanation",
                     "VOILUTSequence", "ModalityLUTSequence", "RescaleType", "IconImageSequence",
                     "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod",
                     "FloatPixelData", "DoubleFloatPixelData", "NumberOfFrames", "PerFrameFunctionalGroupsSequence",
                     "SharedFunctionalGroupsSequence", "FrameIncrementPointer")


@dataclass
class DicomSeries:
    """A DICOM series as a volume (see the module docstring for the layout)."""
    data: np.ndarray                     # (columns, rows, slices) float32, modality units
    affine: np.ndarray                   # (4, 4) voxel -> RAS mm
    datasets: list = field(default_factory=list)  # one header per slice (pixel data removed), sorted like data
    series_uid: str = ""
    modality: str = "OT"
    source: str = ""


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True if ``path`` starts like a DICOM file (preamble + 'DICM'), or is a .dcm file."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _read_header(path: Path, argument: str):
    """pydicom dataset of ``path`` or None if it is not DICOM; InputError if it is corrupt."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        if path.suffix.lower() in (".dcm", ".dicom"):
            raise InputError(f"{argument}: {path} is not a valid DICOM file (no DICOM header)") from None
        return None
    except Exception as exc:  # pydicom raises many types for truncated or corrupt files
        raise InputError(f"{argument}: {path} is a corrupt or truncated DICOM file "
                         f"({type(exc).__name__}: {exc})") from None


def _pixels(ds, path, argument: str) -> np.ndarray:
    """Pixel data in modality units (float32), (frames, rows, cols) or (rows, cols)."""
    from pydicom.pixels import apply_modality_lut

    try:
        array = ds.pixel_array
    except Exception as exc:
        raise InputError(f"{argument}: cannot decode the pixel data of {path} "
                         f"({type(exc).__name__}: {exc})") from None
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise InputError(f"{argument}: {path} is a colour DICOM image ({ds.get('PhotometricInterpretation')}); "
                         "expected a grayscale CT/MR image")
    try:
        array = apply_modality_lut(array, ds)
    except Exception as exc:
        raise InputError(f"{argument}: cannot apply the rescale of {path} ({exc})") from None
    array = np.asarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise InputError(f"{argument}: {path} contains NaN or Inf pixel values")
    return array


def _geometry(ds):
    """(row cosine, column cosine, position, (row spacing, column spacing)) or None if absent."""
    try:
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
        ipp = np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=np.float64)
    except (AttributeError, TypeError, ValueError):
        return None
    if iop.shape != (6,) or ipp.shape != (3,) or not (np.isfinite(iop).all() and np.isfinite(ipp).all()):
        return None
    spacing = ds.get("PixelSpacing", None)
    spacing = (1.0, 1.0) if spacing is None or len(spacing) != 2 else tuple(float(v) for v in spacing)
    return iop[:3], iop[3:], ipp, spacing


def _affine(first_geom, last_geom, n: int, thickness: float | None) -> np.ndarray:
    """Voxel (column, row, slice) -> RAS affine from the first and last slice geometry."""
    row_cos, col_cos, ipp0, (dr, dc) = first_geom
    normal = np.cross(row_cos, col_cos)
    if n > 1:
        step = (last_geom[2] - ipp0) / (n - 1)
    else:
        step = normal * (thickness if thickness and thickness > 0 else 1.0)
    lps = np.eye(4)
    lps[:3, 0] = row_cos * dc     # i: along a row = increasing column index
    lps[:3, 1] = col_cos * dr     # j: down a column = increasing row index
    lps[:3, 2] = step
    lps[:3, 3] = ipp0
    return LPS_TO_RAS @ lps


def _series_files(path: Path, argument: str) -> list[tuple[Path, object]]:
    if path.is_file():
        ds = _read_header(path, argument)
        if ds is None:
            raise InputError(f"{argument}: {path} is not a DICOM file")
        if "PixelData" not in ds:
            raise InputError(f"{argument}: {path} is a DICOM {ds.get('Modality', '')} file without an image "
                             "(no Pixel Data)")
        return [(path, ds)]
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        sub = [p.name for p in path.iterdir() if p.is_dir()]
        hint = f"; it has subfolders {sub[:5]}: give one series folder" if sub else ""
        raise InputError(f"{argument}: the folder {path} is empty{hint}")
    found = []
    for f in files:
        ds = _read_header(f, argument)
        if ds is None or "PixelData" not in ds:
            log.info("%s: skipping %s (not a DICOM image)", argument, f.name)
            continue
        found.append((f, ds))
    if not found:
        raise InputError(f"{argument}: no DICOM images in {path} ({len(files)} file(s), none a DICOM image)")
    return found


def read_series(path: str | os.PathLike | list, argument: str = "path", strict: bool = True) -> DicomSeries:
    """One DICOM series (folder, single-frame or multi-frame file, or a list of files) as a
    :class:`DicomSeries`; several series in the input are an error.

    ``strict=False`` (training data) accepts slices that do not form one volume (different
    orientations, repeated positions, e.g. localizers or multi-echo series) as a stack of
    2D images in file order with a unit affine instead of raising.
    """
    if isinstance(path, (list, tuple)):
        files = [Path(p) for p in path]
        if not files:
            raise InputError(f"{argument}: no DICOM files given")
        found = [(f, ds) for f, ds in ((f, _read_header(f, argument)) for f in files) if ds is not None]
        path = files[0].parent
        if not found:
            raise InputError(f"{argument}: none of the files in {path} is DICOM")
    else:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{argument}: not found: {path}")
        found = _series_files(path, argument)
    by_series: dict[str, list] = {}
    for f, ds in found:
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((f, ds))
    if len(by_series) > 1:
        described = "; ".join(f"{uid or '(no UID)'}: {len(v)} file(s), "
                              f"{v[0][1].get('Modality', '?')} '{v[0][1].get('SeriesDescription', '')}'"
                              for uid, v in by_series.items())
        raise InputError(f"{argument}: {path} mixes {len(by_series)} DICOM series ({described}); "
                         "put each series in its own folder")
    uid, items = next(iter(by_series.items()))
    if len(items) == 1 and int(items[0][1].get("NumberOfFrames", 1) or 1) > 1:
        return _multiframe(*items[0], argument)
    return _stack(items, uid, path, argument, strict)


def group_series(files: list[Path], argument: str = "files") -> list[list[Path]]:
    """DICOM image files grouped by SeriesInstanceUID (headers only; non-DICOM files skipped)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    groups: dict[str, list[Path]] = {}
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except InvalidDicomError:
            if f.suffix.lower() in (".dcm", ".dicom"):
                raise InputError(f"{argument}: {f} is not a valid DICOM file (no DICOM header)") from None
            continue
        except Exception as exc:
            raise InputError(f"{argument}: {f} is a corrupt or truncated DICOM file "
                             f"({type(exc).__name__}: {exc})") from None
        if "Rows" not in ds:   # DICOMDIR, structured reports, RT plans ...
            continue
        key = (str(ds.get("SeriesInstanceUID", f)), int(ds.get("Rows", 0)), int(ds.get("Columns", 0)))
        groups.setdefault(key, []).append(f)
    return list(groups.values())


def _stack(items: list, uid: str, path: Path, argument: str, strict: bool = True) -> DicomSeries:
    shapes = {(int(ds.Rows), int(ds.Columns)) for _, ds in items}
    if len(shapes) > 1:
        raise InputError(f"{argument}: the slices of {path} have different sizes {sorted(shapes)}")
    geoms = [_geometry(ds) for _, ds in items]
    if all(g is not None for g in geoms):
        cosines = np.stack([np.concatenate(g[:2]) for g in geoms])
        if np.abs(cosines - cosines[0]).max() > 1e-3:
            if not strict:
                return _unordered(items, uid, path, argument)
            raise InputError(f"{argument}: the slices of {path} have different orientations "
                             "(ImageOrientationPatient); expected one stack of parallel slices")
        normal = np.cross(geoms[0][0], geoms[0][1])
        keys = [float(g[2] @ normal) for g in geoms]
    else:
        geoms = None
        keys = [float(ds.get("InstanceNumber", i) or i) for i, (_, ds) in enumerate(items)]
        if len(items) > 1:
            log.warning("%s: %s has no ImagePositionPatient/ImageOrientationPatient; slices ordered by "
                        "InstanceNumber with a unit-spacing affine", argument, path)
    order = np.argsort(keys, kind="stable")
    if len(set(np.round(keys, 4))) != len(keys):
        if not strict:
            return _unordered(items, uid, path, argument)
        raise InputError(f"{argument}: several slices of {path} share one position; expected one series of "
                         "distinct slices")
    items = [items[i] for i in order]
    data = np.stack([_pixels(ds, f, argument).T for f, ds in items], axis=-1)
    thickness = _float(items[0][1].get("SliceThickness"))
    if geoms is not None:
        geoms = [geoms[i] for i in order]
        affine = _affine(geoms[0], geoms[-1], len(items), thickness)
    else:
        affine = LPS_TO_RAS.copy()
    headers = [_strip_pixels(ds) for _, ds in items]
    return DicomSeries(data=data, affine=affine, datasets=headers, series_uid=uid,
                       modality=str(items[0][1].get("Modality", "OT")), source=str(path))


def _unordered(items: list, uid: str, path: Path, argument: str) -> DicomSeries:
    """Slices that are not one volume, as a stack of 2D images in file order (unit affine)."""
    log.info("%s: the %d slices of series %s in %s are not one volume; using them as separate 2D images",
             argument, len(items), uid, path)
    data = np.stack([_pixels(ds, f, argument).T for f, ds in items], axis=-1)
    return DicomSeries(data=data, affine=LPS_TO_RAS.copy(), datasets=[_strip_pixels(ds) for _, ds in items],
                       series_uid=uid, modality=str(items[0][1].get("Modality", "OT")), source=str(path))


def _multiframe(f: Path, ds, argument: str) -> DicomSeries:
    frames = _pixels(ds, f, argument)                       # (frames, rows, cols)
    data = np.ascontiguousarray(np.moveaxis(frames, 0, -1).transpose(1, 0, 2))
    geom = _geometry(ds)
    thickness = _float(ds.get("SliceThickness"))
    if geom is None:
        log.warning("%s: multi-frame file %s has no classic geometry tags; using a unit-spacing affine",
                    argument, f)
        affine = LPS_TO_RAS.copy()
    else:
        affine = _affine(geom, geom, 1, thickness)
    return DicomSeries(data=data, affine=affine, datasets=[], series_uid=str(ds.get("SeriesInstanceUID", "")),
                       modality=str(ds.get("Modality", "OT")), source=str(f))


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _strip_pixels(ds):
    ds = copy.deepcopy(ds)
    for keyword in ("PixelData",):
        if keyword in ds:
            delattr(ds, keyword)
    return ds


# --- writing -----------------------------------------------------------------------------
def geometry_from_affine(affine: np.ndarray, k: int) -> dict:
    """DICOM geometry tags of slice k of a (column, row, slice) volume with RAS ``affine``."""
    lps = np.linalg.inv(LPS_TO_RAS) @ np.asarray(affine, dtype=np.float64)
    di, dj, dk = (np.linalg.norm(lps[:3, a]) for a in range(3))
    row_cos, col_cos = lps[:3, 0] / di, lps[:3, 1] / dj
    position = lps @ np.array([0.0, 0.0, float(k), 1.0])
    return {"ImagePositionPatient": [_ds(v) for v in position[:3]],
            "ImageOrientationPatient": [_ds(v) for v in (*row_cos, *col_cos)],
            "PixelSpacing": [_ds(dj), _ds(di)], "SliceThickness": _ds(dk), "SpacingBetweenSlices": _ds(dk)}


def _ds(value: float) -> str:
    """A decimal string (VR DS, at most 16 characters)."""
    text = f"{float(value):.10g}"
    return text if len(text) <= 16 else f"{float(value):.6e}"


def _rescale(data: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) mapping uint16 0..65535 onto the data's range."""
    lo, hi = float(data.min()), float(data.max())
    slope = (hi - lo) / 65535.0 if hi > lo else 1.0
    return slope, lo


def _new_dataset(modality: str):
    """A minimal Secondary Capture dataset (new patient/study) for non-DICOM input."""
    import datetime

    from pydicom.dataset import Dataset
    from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    now = datetime.datetime.now()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.PatientName = "Anonymous"
    ds.PatientID = "scoremed"
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate = ds.SeriesDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = now.strftime("%H%M%S")
    ds.Modality = modality
    ds.ConversionType = "WSD"
    ds.FrameOfReferenceUID = generate_uid()
    ds.SeriesNumber = 1
    return ds


def series_datasets(data: np.ndarray, affine: np.ndarray, templates: list | None = None, modality: str = "OT",
                    description: str = "scoremed reconstruction") -> list:
    """Build (in memory) one dataset per slice of ``data`` (columns, rows, slices) in float units.

    ``templates``: the source series headers (same slice order) whose patient, study and
    geometry tags are kept; None -> new Secondary Capture datasets with geometry from ``affine``.
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 3:
        raise InputError(f"data: expected a 3D volume (columns, rows, slices), got shape {data.shape}")
    if templates is not None and len(templates) != data.shape[2]:
        templates = None
    slope, intercept = _rescale(data)
    series_uid = generate_uid()
    base = None if templates else _new_dataset(modality)
    out = []
    for k in range(data.shape[2]):
        ds = copy.deepcopy(templates[k] if templates else base)
        for keyword in _PIXEL_ATTRIBUTES:
            if keyword in ds:
                delattr(ds, keyword)
        if templates is None:
            for key, value in geometry_from_affine(affine, k).items():
                setattr(ds, key, value)
        sop_uid = generate_uid()
        ds.SOPInstanceUID = sop_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = int(ds.get("SeriesNumber", 0) or 0) + 1000
        ds.SeriesDescription = (f"{description} of {ds.SeriesDescription}"
                                if templates and ds.get("SeriesDescription") else description)[:64]
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.DerivationDescription = "score-based reconstruction (scoremed)"
        ds.InstanceNumber = k + 1
        stored = np.clip(np.round((data[:, :, k].T - intercept) / slope), 0, 65535).astype(np.uint16)
        ds.Rows, ds.Columns = stored.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), _ds(intercept)
        ds.WindowCenter, ds.WindowWidth = _ds(intercept + 32767.5 * slope), _ds(max(65535 * slope, 1e-6))
        ds.PixelData = stored.tobytes()
        ds["PixelData"].VR = "OW"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.file_meta = meta
        out.append(ds)
    return out


def encode_series(datasets: list) -> list[bytes]:
    """Each dataset as the bytes of a DICOM file (so encoding errors surface before any write)."""
    encoded = []
    for ds in datasets:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        encoded.append(buffer.getvalue())
    return encoded


def write_series(folder: str | os.PathLike, encoded: list[bytes]) -> list[Path]:
    """Write encoded files as ``folder/IM0001.dcm`` ... (each atomically). Returns the paths."""
    folder = Path(folder)
    paths = []
    for k, data in enumerate(encoded):
        path = folder / f"IM{k + 1:04d}.dcm"
        atomic_write(path, lambda p, data=data: p.write_bytes(data), suffix=".dcm")
        paths.append(path)
    return paths

"""2D parallel-beam CT at any angles and detector layout: matrix-free projector, exact adjoint, FBP.

``CT(n, angles)`` takes any angles (radians, any order and count) and any number and
spacing of detector bins. When every angle lies on a full grid of evenly spaced views
(``full_angles``, by default the 180 views ``full_view_angles(180)``), ``CT(...)``
returns a :class:`SparseViewCT`: the same operator, decomposable as A = P(Λ) T for the
transform-domain consistency step; other geometries use the gradient / CG paths, which
need only ``forward`` and ``adjoint``.

Cost (``scripts/benchmark_operators.py`` measures it): the projector is matrix-free: it
stores only its angles and a disc mask (n^2 floats) and works in blocks of views with a
few hundred MB of working memory. At 512 x 512 with 720 views construction takes
milliseconds and one forward or adjoint about 1-2 s on one CPU thread (a sparse system
matrix would hold ~4e8 entries, several GB). Small transforms (up to about 128^2 with 180
views) build their sparse matrices once, on first use, because multiplying by them is
faster on the CPU (see ``cache_bytes``).
"""
from __future__ import annotations

import math

import torch

from scoremed.errors import InputError

from .base import DecomposableOperator, LinearOperator, Shape
from .checks import check_tensor
from .primitives import Mask
from .radon import WINDOWS, RayTransform

__all__ = ["CT", "SparseViewCT", "ParallelBeam", "full_view_angles", "sparse_view_angles", "WINDOWS"]

#: |angle| above this many radians is taken for degrees
MAX_ANGLE = 4 * math.pi
#: an angle within this distance (radians) of a grid angle lies on the grid
GRID_TOLERANCE = 1e-6


def full_view_angles(n_full: int = 180) -> torch.Tensor:
    """float64 (n_full,): linspace(0, pi, n_full, endpoint=False), in radians."""
    if not (isinstance(n_full, int) and n_full >= 1):
        raise InputError(f"n_full: expected an int >= 1, got {n_full!r}")
    return torch.arange(n_full, dtype=torch.float64) * (math.pi / n_full)


def sparse_view_angles(n_views: int, n_full: int = 180) -> torch.Tensor:
    """float64 (n_views,): n_views evenly spaced angles picked from ``full_view_angles(n_full)``."""
    full = full_view_angles(n_full)
    if not (isinstance(n_views, int) and 1 <= n_views <= n_full):
        raise InputError(f"n_views: expected an int in [1, n_full={n_full}], got {n_views!r}")
    return full[torch.arange(n_views) * n_full // n_views]


def check_angles(a: object, name: str) -> torch.Tensor:
    """float64 CPU (V,) angles in radians from a sequence or tensor; InputError otherwise."""
    try:
        t = a.detach().double().cpu() if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"{name}: expected a 1-D sequence of angles in radians, got {type(a).__name__}") from None
    if t.ndim != 1 or len(t) < 1 or not bool(torch.isfinite(t).all()):
        raise InputError(f"{name}: expected a non-empty 1-D sequence of finite angles in radians, got {a!r}")
    if float(t.abs().max()) > MAX_ANGLE:
        raise InputError(f"{name}: expected radians, got values up to {float(t.abs().max()):.4g} "
                         "(degrees? convert with numpy.deg2rad)")
    return t


def _grid_positions(angles: torch.Tensor, full: torch.Tensor) -> torch.Tensor | None:
    """Index into ``full`` of every angle, or None if some angle is not on the grid."""
    dist = (angles[:, None] - full[None, :]).abs()
    nearest = dist.argmin(dim=1)
    return nearest if bool((dist.min(dim=1).values < GRID_TOLERANCE).all()) else None


def _check_positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise InputError(f"{name}: expected a positive number (pixels), got {value!r}")
    return float(value)


class ParallelBeam(RayTransform):
    """The parallel-beam ray transform, no support mask: image (B, C, n, n) -> (B, C, V, n_detectors).

    The ray of angle θ through detector bin d is {(x, y) = (c + s cos θ + t sin θ,
    c - s sin θ + t cos θ)}, s = (d - detector_center) * detector_spacing, with the
    rotation centre c = n // 2 (the ``skimage.transform.radon`` convention): θ = 0 sums
    the image's columns. Lengths in pixels.
    """

    def __init__(self, image_size: int, angles: torch.Tensor, n_detectors: int, detector_spacing: float = 1.0,
                 detector_center: float | None = None, cache_bytes: int | None = None):
        super().__init__(image_size, len(angles), n_detectors, cache_bytes)
        self.register_buffer("angles", angles.to(torch.get_default_dtype()))
        self.detector_spacing = detector_spacing
        self.detector_center = float(n_detectors // 2 if detector_center is None else detector_center)

    def _offsets(self, dtype: torch.dtype) -> torch.Tensor:
        d = torch.arange(self.n_detectors, dtype=dtype, device=self.angles.device)
        return (d - self.detector_center) * self.detector_spacing

    def rays(self, views: slice, dtype: torch.dtype):
        theta = self.angles[views].to(dtype)[:, None]
        cos, sin, s, c = torch.cos(theta), torch.sin(theta), self._offsets(dtype), self.image_size // 2
        return c + s * cos, c - s * sin, sin, cos

    def detector_positions(self, views: slice, dtype: torch.dtype):
        theta = self.angles[views].to(dtype)
        r = torch.arange(self.image_size, dtype=dtype, device=theta.device) - self.image_size // 2
        s = r[None, None, :] * torch.cos(theta)[:, None, None] - r[None, :, None] * torch.sin(theta)[:, None, None]
        return s / self.detector_spacing + self.detector_center, None

    def fbp_weights(self, dtype: torch.dtype) -> torch.Tensor:
        """π / n_views for every view (``iradon``'s uniform weighting)."""
        return torch.full((self.n_views,), math.pi / self.n_views, dtype=dtype, device=self.angles.device)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, detector_spacing={self.detector_spacing}, "
                f"detector_center={self.detector_center}")


def _disc(n: int) -> torch.Tensor:
    """(n, n) float32 0/1: pixels within n//2 of the centre pixel (n//2, n//2)."""
    r = torch.arange(n, dtype=torch.float64) - n // 2
    return (r[:, None] ** 2 + r[None, :] ** 2 <= (n // 2) ** 2).to(torch.float32)


class CT(LinearOperator):
    """Parallel-beam CT: image (B, C, n, n) -> sinogram (B, C, n_views, n_detectors).

    Args:
        image_size: n, the image is n x n pixels.
        angles: view angles in radians, any order and count (values up to 4π).
        n_detectors: detector bins (default n, or ceil(sqrt(2) n) with ``circle=False``).
        full_angles: a full grid of views the angles are picked from; then (and when the
            angles lie on the default 180-view grid) ``CT(...)`` returns a :class:`SparseViewCT`.
        detector_spacing: bin width in pixels; detector_center: the bin (fractional) the
            rotation centre projects to (default n_detectors // 2).
        circle: only the disc inscribed in the image is imaged (``skimage`` ``circle=True``);
            pixels outside it are ignored and FBP returns 0 there.
        cache_bytes: transforms whose sparse matrices fit in this many bytes (default
            ``radon.CACHE_BYTES`` = 512 MB: 512 x 512 with up to 42 views, ~200 x 200 with 180)
            build them on first use (about 1 s at 128^2, 7 s at 512^2 with 23 views) and multiply
            by them; larger ones, and all with
            ``cache_bytes=0``, stay matrix-free.

    Line integrals in pixel units (see :class:`ParallelBeam` for the geometry), computed in
    the input's precision (float32 or float64) on the operator's device.
    """

    kind = "ct"
    measurement_name = "sinogram"
    needs_full_precision = True   # filtered back-projection uses torch.fft

    def __new__(cls, *args, **kwargs):
        if cls is CT and (len(args) > 1 or "angles" in kwargs):
            angles = args[1] if len(args) > 1 else kwargs["angles"]
            full = args[3] if len(args) > 3 else kwargs.get("full_angles")
            try:
                on_grid = full is not None or _grid_positions(check_angles(angles, "angles"), full_view_angles()) \
                    is not None
            except InputError:
                on_grid = False  # __init__ reports it
            cls = SparseViewCT if on_grid else cls
        return super().__new__(cls)

    def __init__(self, image_size: int, angles, n_detectors: int | None = None, full_angles=None, *,
                 detector_spacing: float = 1.0, detector_center: float | None = None, circle: bool = True,
                 cache_bytes: int | None = None):
        super().__init__()
        if isinstance(image_size, bool) or not (isinstance(image_size, int) and image_size >= 2):
            raise InputError(f"image_size: expected an int >= 2, got {image_size!r}")
        n_det = (image_size if circle else math.ceil(math.sqrt(2) * image_size)) if n_detectors is None \
            else n_detectors
        if isinstance(n_det, bool) or not (isinstance(n_det, int) and n_det >= 1):
            raise InputError(f"n_detectors: expected an int >= 1, got {n_detectors!r}")
        spacing = _check_positive(detector_spacing, "detector_spacing")
        if detector_center is not None and not (isinstance(detector_center, (int, float))
                                                and math.isfinite(detector_center)):
            raise InputError(f"detector_center: expected a number (detector bins), got {detector_center!r}")
        if cache_bytes is not None and (isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int)
                                        or cache_bytes < 0):
            raise InputError(f"cache_bytes: expected an int >= 0 (0 = always matrix-free), got {cache_bytes!r}")
        self.image_size, self.n_detectors, self.circle = image_size, n_det, bool(circle)
        self._geometry = {"n_detectors": n_det, "detector_spacing": spacing, "detector_center": detector_center,
                          "cache_bytes": cache_bytes}
        self.projector = self._projector(self._measured_angles(angles, full_angles))
        self.disc = Mask(_disc(image_size), name="disc") if circle else None
        self.op = self.projector @ self.disc if circle else self.projector

    def _measured_angles(self, angles, full_angles) -> torch.Tensor:
        return check_angles(angles, "angles")

    def _projector(self, angles: torch.Tensor) -> RayTransform:
        """The ray transform of this geometry at ``angles``."""
        return ParallelBeam(self.image_size, angles, **self._geometry)

    @property
    def angles(self) -> torch.Tensor:
        """The measured view angles (n_views,), radians."""
        return self.projector.angles

    @property
    def image_shape(self) -> Shape:
        return (None, self.image_size, self.image_size)

    @property
    def measurement_shape(self) -> Shape:
        return (None, len(self.angles), self.n_detectors)

    def _check_window(self, window: str) -> None:
        if window not in WINDOWS:
            raise InputError(f"window: expected one of {WINDOWS}, got {window!r}")

    def support(self, x: torch.Tensor) -> torch.Tensor:
        """x zero outside the disc the rays cross (``circle=True``, the :func:`_disc` mask); x otherwise."""
        return self.disc(x) if self.disc is not None else self.check_image(x)

    def _fbp(self, transform: RayTransform, sinogram: torch.Tensor, window: str) -> torch.Tensor:
        self._check_window(window)
        return self.support(transform.fbp(sinogram, window))

    def pseudo_inverse(self, y: torch.Tensor, window: str = "ramp") -> torch.Tensor:
        """FBP from the measured views, scaled like ``skimage.transform.iradon``."""
        return self._fbp(self.projector, self.check_measurement(y), window)

    def extra_repr(self) -> str:
        return (f"image_size={self.image_size}, n_views={len(self.angles)}, n_detectors={self.n_detectors}, "
                f"circle={self.circle}")


class SparseViewCT(CT, DecomposableOperator):
    """CT whose angles are picked from a full grid of views ``full_angles`` (default 180 views).

    Decomposition: T = the projection over ``full_angles``, ``mask`` (1, 1, n_full, 1)
    selects the measured views, ``inverse_transform`` = full-view FBP. Every angle must
    be one of ``full_angles`` (to 1e-6 rad), each at most once.
    """

    def _measured_angles(self, angles, full_angles) -> torch.Tensor:
        full = full_view_angles() if full_angles is None else check_angles(full_angles, "full_angles")
        nearest = _grid_positions(check_angles(angles, "angles"), full)
        if nearest is None:
            raise InputError(f"angles: expected each angle to be one of full_angles ({len(full)} angles "
                             f"in [{full.min():.4g}, {full.max():.4g}] rad), got {check_angles(angles, 'angles').tolist()}")
        if len(nearest.unique()) != len(nearest):
            raise InputError(f"angles: expected distinct angles, got {check_angles(angles, 'angles').tolist()}")
        self.register_buffer("view_index", nearest)
        mask = torch.zeros(1, 1, len(full), 1)
        mask[:, :, nearest] = 1
        self.register_buffer("mask", mask)
        self.full_projector = self._projector(full)
        return full[nearest]

    @property
    def full_angles(self) -> torch.Tensor:
        """The full grid of views (n_full,), radians."""
        return self.full_projector.angles

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Full-view sinogram (B, C, n_full, n_detectors)."""
        return self.full_projector(self.support(self.check_image(x)))

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        """Measured views scattered into a zero full-view sinogram (B, C, n_full, n_detectors)."""
        y = self._check_measurement_layout(y)
        full = y.new_zeros(*y.shape[:2], len(self.full_angles), self.n_detectors)
        return full.index_copy(2, self.view_index, y)

    def inverse_transform(self, k: torch.Tensor, window: str = "ramp") -> torch.Tensor:
        """Full-view FBP: (B, C, n_full, n_detectors) -> (B, C, n, n), zero outside the disc."""
        shape = (None, len(self.full_angles), self.n_detectors)
        k = self._check_device(check_tensor(k, "k", shape, "real", "full-view sinogram"), "k")
        return self._fbp(self.full_projector, k, window)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_full={len(self.full_angles)}"

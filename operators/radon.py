"""Matrix-free 2D ray transforms on the device (Joseph's method through ``grid_sample``) and FBP filters.

Coordinates are in pixel units, (x, y) = (column, row), pixel (i, j) centred at (j, i).
A ray is a point p and a direction u. Joseph's method samples a ray once per image row
where it is steeper than 45 degrees (else once per column), interpolating linearly
between the two nearest pixels of that row (column), with the step length |u| / |u_y|
(|u| / |u_x|) as weight, so results are line integrals in pixel units. The adjoint is
the exact transpose (``grid_sample``'s own input gradient), so <A x, y> = <x, A^T y>
holds to rounding, and both directions are differentiable (each one's gradient is the
other). Views are processed in blocks of at most :data:`BLOCK_POINTS` samples: no system
matrix is stored, the state is the geometry alone.
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from .base import LinearOperator, Shape

__all__ = ["RayTransform", "joseph_coefficients", "fbp_filter", "filter_sinogram", "WINDOWS", "BLOCK_POINTS",
           "CACHE_BYTES"]

#: samples (rays x points per ray, times image channels) per block of views
BLOCK_POINTS = 2 ** 22
#: a transform whose sparse matrices (projection, its transpose, FBP back-projection) fit in this many
#: bytes builds them once, on first use, and multiplies by them (faster on the CPU for small images)
CACHE_BYTES = 2 ** 29
WINDOWS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")

_BILINEAR, _ZEROS = 0, 0  # grid_sampler enums: interpolation and padding modes


def joseph_coefficients(px: torch.Tensor, py: torch.Tensor, ux: torch.Tensor, uy: torch.Tensor):
    """Per ray: sample k = 0 .. n-1 lies at (col0 + k dcol, row0 + k drow) and has weight ``weight``.

    ``px, py`` a point of the ray, ``ux, uy`` its direction (broadcastable tensors).
    Returns (col0, dcol, row0, drow, weight) broadcast to a common shape.
    """
    px, py, ux, uy = torch.broadcast_tensors(px, py, ux, uy)
    steep = uy.abs() >= ux.abs()
    lead = torch.where(steep, uy, ux)
    dcol, drow = torch.where(steep, ux / lead, 1.0), torch.where(steep, 1.0, uy / lead)
    start = torch.where(steep, py, px)
    weight = torch.sqrt(ux * ux + uy * uy) / lead.abs()
    return px - start * dcol, dcol, py - start * drow, drow, weight


def _sample_grid(coefficients, n: int) -> torch.Tensor:
    """(V, D, n, 2) grid_sample coordinates (align_corners=False) of the samples of every ray."""
    col0, dcol, row0, drow, _ = coefficients
    k = torch.arange(n, dtype=col0.dtype, device=col0.device)
    grid = torch.empty((*col0.shape, n, 2), dtype=col0.dtype, device=col0.device)
    for axis, (a, b) in enumerate(((col0, dcol), (row0, drow))):
        # normalised coordinate of pixel position a + k b: (2 (a + k b) + 1) / n - 1
        torch.addcmul(((2 * a + 1) / n - 1)[..., None], (2 * b / n)[..., None], k, out=grid[..., axis])
    return grid


def _joseph_entries(coefficients, n: int, first_ray: int) -> tuple[torch.Tensor, ...]:
    """COO (ray, pixel, weight) of Joseph's interpolation for a block of rays, sorted by ray."""
    col0, dcol, row0, drow, weight = coefficients
    k = torch.arange(n, dtype=col0.dtype, device=col0.device)
    steep = (drow == 1)[..., None]  # steep rays step one row per sample (drow is exactly 1 for them)
    minor = torch.where(steep, col0[..., None] + k * dcol[..., None], row0[..., None] + k * drow[..., None])
    lo = torch.floor(minor)
    frac = minor - lo
    taps = torch.stack([lo, lo + 1], dim=-1).long()  # (V, D, n, 2)
    weights = torch.stack([1 - frac, frac], dim=-1) * weight[..., None, None]
    major = torch.arange(n, device=col0.device)[:, None]
    pixels = torch.where(steep[..., None], major * n + taps, taps * n + major)
    rays = first_ray + torch.arange(col0.numel(), device=col0.device).reshape(*col0.shape, 1, 1)
    keep = (taps >= 0) & (taps < n) & (weights != 0)
    return rays.expand_as(taps)[keep], pixels[keep], weights[keep]


def _csr_parts(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n_rows: int, sort: bool):
    """(crow, col, val) of the CSR matrix with these COO entries (``sort``: rows not yet in order)."""
    if sort:
        order = torch.argsort(rows, stable=True)
        rows, cols, vals = rows[order], cols[order], vals[order]
    crow = torch.cat([rows.new_zeros(1), torch.bincount(rows, minlength=n_rows).cumsum(0)])
    return crow.int(), cols.int(), vals


def _spmm(parts: tuple[torch.Tensor, ...], size: tuple[int, int], dense: torch.Tensor) -> torch.Tensor:
    """CSR(parts) @ dense (N, K); a matrix-vector product when K == 1 (faster on the CPU)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        a = torch.sparse_csr_tensor(*parts, size=size, check_invariants=False)
        return torch.mv(a, dense[:, 0]).unsqueeze(1) if dense.shape[1] == 1 else a @ dense


class _RayApply(torch.autograd.Function):
    """A x (``adjoint`` False) or A^T y through the transform; the gradient of each is the other."""

    @staticmethod
    def forward(t: torch.Tensor, transform: RayTransform, adjoint: bool) -> torch.Tensor:
        return transform.backproject(t) if adjoint else transform.project(t)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.transform, ctx.adjoint = inputs[1], inputs[2]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _RayApply.apply(grad, ctx.transform, not ctx.adjoint), None, None


class RayTransform(LinearOperator):
    """Line integrals along the rays of a geometry: image (B, C, n, n) -> (B, C, n_views, n_detectors).

    Subclasses (the geometries) register their buffers and implement :meth:`rays` (and,
    for FBP, :meth:`detector_positions` and :meth:`fbp_weights`). With ``cache_bytes``
    (default :data:`CACHE_BYTES`) at least :meth:`cached_bytes_estimate`, the same
    interpolation weights are kept as sparse matrices (non-persistent buffers) after the
    first call; otherwise every call recomputes them block by block.
    """

    measurement_name = "sinogram"

    def __init__(self, image_size: int, n_views: int, n_detectors: int, cache_bytes: int | None = None):
        super().__init__()
        self.image_size, self.n_views, self.n_detectors = image_size, n_views, n_detectors
        self.cache_bytes = CACHE_BYTES if cache_bytes is None else cache_bytes
        self._sizes: dict[str, tuple[int, int]] = {}

    @property
    def image_shape(self) -> Shape:
        return (None, self.image_size, self.image_size)

    @property
    def measurement_shape(self) -> Shape:
        return (None, self.n_views, self.n_detectors)

    def rays(self, views: slice, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """(px, py, ux, uy) of the rays of ``views``, broadcastable to (V, n_detectors)."""
        raise NotImplementedError

    def detector_positions(self, views: slice, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Detector coordinate (in bins) of every pixel centre, (V, n, n), and the FBP back-projection
        weight per pixel (broadcastable to it; None for 1)."""
        raise NotImplementedError

    def fbp_weights(self, dtype: torch.dtype) -> torch.Tensor:
        """Per-view quadrature weight of the FBP integral over views, (n_views,)."""
        raise NotImplementedError

    def preweight(self, sinogram: torch.Tensor) -> torch.Tensor:
        """Weighting of the sinogram before the ramp filter (none for parallel beam)."""
        return sinogram

    def filter(self, sinogram: torch.Tensor, window: str) -> torch.Tensor:
        """The FBP filter along the detector (:func:`filter_sinogram` at the bin spacing)."""
        return filter_sinogram(sinogram, window, self.detector_spacing)

    def _blocks(self, channels: int):
        per_view = self.n_detectors * self.image_size * max(channels, 2)
        size = max(1, BLOCK_POINTS // per_view)
        return [slice(start, min(start + size, self.n_views)) for start in range(0, self.n_views, size)]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return _RayApply.apply(x, self, False)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return _RayApply.apply(y, self, True)

    # --- sparse matrices for small transforms ---------------------------------------------
    def cached_bytes_estimate(self) -> int:
        """Bytes the three sparse matrices would take (float32 values, int32 indices)."""
        n, views, d = self.image_size, self.n_views, self.n_detectors
        return 8 * (2 * 2 * views * d * n + 2 * views * n * n)

    def _matrix(self, name: str, t: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """CSR parts of matrix ``name`` ("A", "AT", "FBP") in t's dtype/device, built on first use; None
        if the transform is too large to cache."""
        if self.cached_bytes_estimate() > self.cache_bytes:
            return None
        parts = tuple(getattr(self, f"_{name}_{p}", None) for p in ("crow", "col", "val"))
        if parts[2] is None or parts[2].dtype != t.dtype or parts[2].device != t.device:
            self._build_matrices(t.dtype, t.device)
            parts = tuple(getattr(self, f"_{name}_{p}") for p in ("crow", "col", "val"))
        return parts

    def _build_matrices(self, dtype: torch.dtype, device: torch.device) -> None:
        n, d = self.image_size, self.n_detectors
        rows, cols, vals, fbp = [], [], [], []
        for views in self._blocks(1):
            coefficients = joseph_coefficients(*(r.to(device) for r in self.rays(views, dtype)))
            for store, entry in zip((rows, cols, vals), _joseph_entries(coefficients, n, views.start * d)):
                store.append(entry)
            fbp.append(self._fbp_entries(views, dtype, device))
        rows, cols, vals = torch.cat(rows), torch.cat(cols), torch.cat(vals)
        matrices = {"A": (_csr_parts(rows, cols, vals, self.n_views * d, sort=False), (self.n_views * d, n * n)),
                    "AT": (_csr_parts(cols, rows, vals, n * n, sort=True), (n * n, self.n_views * d)),
                    "FBP": (_csr_parts(*(torch.cat(e) for e in zip(*fbp)), n * n, sort=True), (n * n, self.n_views * d))}
        for name, (parts, size) in matrices.items():
            self._sizes[name] = size
            for part, tensor in zip(("crow", "col", "val"), parts):
                self.register_buffer(f"_{name}_{part}", tensor.to(device), persistent=False)

    def _fbp_entries(self, views: slice, dtype: torch.dtype, device) -> tuple[torch.Tensor, ...]:
        """COO (pixel, view * D + bin, weight) of the pixel-driven FBP back-projection for a block of views."""
        u, pixel_weight = (t if t is None else t.to(device) for t in self.detector_positions(views, dtype))
        weight = self.fbp_weights(dtype).to(device)[views][:, None, None]
        weight = weight if pixel_weight is None else weight * pixel_weight
        lo = torch.floor(u)
        frac = u - lo
        taps = torch.stack([lo, lo + 1], dim=-1).long()
        weights = torch.stack([1 - frac, frac], dim=-1) * weight[..., None]
        pixels = torch.arange(self.image_size ** 2, device=device).reshape(1, self.image_size, self.image_size, 1)
        bins = (views.start + torch.arange(u.shape[0], device=device)).reshape(-1, 1, 1, 1) * self.n_detectors + taps
        keep = (taps >= 0) & (taps < self.n_detectors) & (weights != 0)
        return pixels.expand_as(taps)[keep], bins[keep], weights[keep]

    def _apply_matrix(self, name: str, parts, t: torch.Tensor, out_shape: tuple[int, ...]) -> torch.Tensor:
        flat = t.reshape(t.shape[0] * t.shape[1], -1).T
        return _spmm(parts, self._sizes[name], flat).T.reshape(*t.shape[:2], *out_shape).contiguous()

    # --- matrix-free application -----------------------------------------------------------
    def project(self, x: torch.Tensor) -> torch.Tensor:
        """A x without autograd bookkeeping: (B, C, n, n) -> (B, C, n_views, n_detectors)."""
        parts = self._matrix("A", x)
        if parts is not None:
            return self._apply_matrix("A", parts, x, (self.n_views, self.n_detectors))
        b, c, n = x.shape[0], x.shape[1], self.image_size
        image = x.reshape(1, b * c, n, n)
        out = []
        for views in self._blocks(b * c):
            coefficients = joseph_coefficients(*self.rays(views, x.dtype))
            grid = _sample_grid(coefficients, n).reshape(1, -1, n, 2)
            samples = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            out.append(samples.sum(-1).reshape(b * c, *coefficients[4].shape) * coefficients[4])
        return torch.cat(out, dim=1).reshape(b, c, self.n_views, self.n_detectors)

    def backproject(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y, the exact adjoint of :meth:`project`: (B, C, n_views, n_detectors) -> (B, C, n, n)."""
        parts = self._matrix("AT", y)
        if parts is not None:
            return self._apply_matrix("AT", parts, y, (self.image_size, self.image_size))
        b, c, n = y.shape[0], y.shape[1], self.image_size
        flat = y.reshape(b * c, self.n_views, self.n_detectors)
        shape_like = torch.empty((1, b * c, n, n), dtype=y.dtype, device=y.device)
        image = torch.zeros((1, b * c, n, n), dtype=y.dtype, device=y.device)
        for views in self._blocks(b * c):
            coefficients = joseph_coefficients(*self.rays(views, y.dtype))
            grid = _sample_grid(coefficients, n).reshape(1, -1, n, 2)
            weighted = (flat[:, views] * coefficients[4]).reshape(1, b * c, -1, 1).expand(-1, -1, -1, n)
            image += torch.ops.aten.grid_sampler_2d_backward(weighted, shape_like, grid, _BILINEAR, _ZEROS,
                                                             False, [True, False])[0]
        return image.reshape(b, c, n, n)

    def fbp(self, sinogram: torch.Tensor, window: str = "ramp") -> torch.Tensor:
        """Filtered back-projection (B, C, n_views, n_detectors) -> (B, C, n, n); ``window`` in :data:`WINDOWS`.

        The filtered views are interpolated linearly at every pixel's detector position
        (pixel-driven back-projection, like ``skimage.transform.iradon``) and summed with
        the geometry's quadrature weights.
        """
        b, c, n, d = sinogram.shape[0], sinogram.shape[1], self.image_size, self.n_detectors
        filtered = self.filter(self.preweight(sinogram), window)
        parts = self._matrix("FBP", filtered)
        if parts is not None:
            return self._apply_matrix("FBP", parts, filtered, (n, n))
        views_first = filtered.reshape(b * c, self.n_views, 1, d).transpose(0, 1)  # (V, B*C, 1, D)
        weights = self.fbp_weights(sinogram.dtype)
        image = torch.zeros((b * c, n, n), dtype=sinogram.dtype, device=sinogram.device)
        for views in self._blocks(b * c):
            u, pixel_weight = self.detector_positions(views, sinogram.dtype)
            grid = torch.stack([(2 * u + 1) / d - 1, torch.zeros_like(u)], dim=-1)  # (V, n, n, 2)
            values = F.grid_sample(views_first[views], grid, mode="bilinear", padding_mode="zeros",
                                   align_corners=False)  # (V, B*C, n, n)
            view_weight = weights[views][:, None, None, None]
            if pixel_weight is not None:
                view_weight = view_weight * pixel_weight[:, None]
            image += (values * view_weight).sum(0)
        return image.reshape(b, c, n, n)

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, n_views={self.n_views}, n_detectors={self.n_detectors}"


def fbp_filter(n_det: int, window: str, dtype: torch.dtype, device, spacing: float = 1.0,
               fan_step: float | None = None) -> torch.Tensor:
    """rfft-domain FBP filter (P // 2 + 1,) for sinograms zero-padded to P detectors.

    The ramp |f| (f in cycles per bin) is the transform of the band-limited ramp kernel
    h[0] = 1/4, h[odd k] = -1/(pi k)^2 (Kak & Slaney, eq. 61), times a window (as in
    ``skimage.transform.iradon``) and divided by the bin spacing. For equi-angular fan
    beams (``fan_step`` = the angle between bins, radians) the kernel is first multiplied
    by (k a / sin(k a))^2 (Kak & Slaney, eq. 118).
    """
    size = max(64, 2 ** math.ceil(math.log2(2 * n_det)))
    k = torch.arange(size, device=device, dtype=torch.float64)
    k = torch.minimum(k, size - k)
    h = torch.where(k % 2 == 1, -1 / (math.pi * k.clamp(min=1)) ** 2, 0.0)
    h[0] = 0.25
    if fan_step is not None:
        angle = k * fan_step
        h = h * torch.where(k > 0, angle / torch.sin(angle).clamp(min=1e-12), 1.0) ** 2
    response = torch.fft.rfft(h).real
    f = torch.fft.rfftfreq(size, device=device, dtype=torch.float64)
    windows = {"ramp": torch.ones_like(f), "shepp-logan": torch.sinc(f), "cosine": torch.cos(math.pi * f),
               "hamming": 0.54 + 0.46 * torch.cos(2 * math.pi * f), "hann": 0.5 * (1 + torch.cos(2 * math.pi * f))}
    return (response * windows[window] / spacing).to(dtype)


def filter_sinogram(sinogram: torch.Tensor, window: str, spacing: float = 1.0,
                    fan_step: float | None = None) -> torch.Tensor:
    """Each view (last dim = detectors) convolved with the windowed ramp of :func:`fbp_filter`."""
    n_det = sinogram.shape[-1]
    h = fbp_filter(n_det, window, sinogram.dtype, sinogram.device, spacing, fan_step)
    size = 2 * (len(h) - 1)
    return torch.fft.irfft(torch.fft.rfft(sinogram, n=size) * h, n=size)[..., :n_det]

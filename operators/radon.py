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

import torch
import torch.nn.functional as F

from .base import LinearOperator, Shape

__all__ = ["RayTransform", "joseph_coefficients", "fbp_filter", "filter_sinogram", "WINDOWS", "BLOCK_POINTS"]

#: samples (rays x points per ray, times image channels) per block of views
BLOCK_POINTS = 2 ** 22
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


class _Project(torch.autograd.Function):
    """A x through :meth:`RayTransform.project`; the gradient is the back-projection."""

    @staticmethod
    def forward(x: torch.Tensor, transform: RayTransform) -> torch.Tensor:
        return transform.project(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.transform = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _Backproject.apply(grad, ctx.transform), None


class _Backproject(torch.autograd.Function):
    """A^T y through :meth:`RayTransform.backproject`; the gradient is the projection."""

    @staticmethod
    def forward(y: torch.Tensor, transform: RayTransform) -> torch.Tensor:
        return transform.backproject(y)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.transform = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _Project.apply(grad, ctx.transform), None


class RayTransform(LinearOperator):
    """Line integrals along the rays of a geometry: image (B, C, n, n) -> (B, C, n_views, n_detectors).

    Subclasses (the geometries) register their buffers and implement :meth:`rays` (and,
    for FBP, :meth:`detector_positions` and :meth:`fbp_weights`).
    """

    measurement_name = "sinogram"

    def __init__(self, image_size: int, n_views: int, n_detectors: int):
        super().__init__()
        self.image_size, self.n_views, self.n_detectors = image_size, n_views, n_detectors

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

    def _blocks(self, channels: int):
        per_view = self.n_detectors * self.image_size * max(channels, 2)
        size = max(1, BLOCK_POINTS // per_view)
        return [slice(start, min(start + size, self.n_views)) for start in range(0, self.n_views, size)]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Project.apply(x, self)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return _Backproject.apply(y, self)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """A x without autograd bookkeeping: (B, C, n, n) -> (B, C, n_views, n_detectors)."""
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
        filtered = filter_sinogram(self.preweight(sinogram), window, self.detector_spacing)
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


def fbp_filter(n_det: int, window: str, dtype: torch.dtype, device, spacing: float = 1.0) -> torch.Tensor:
    """rfft-domain FBP filter (P // 2 + 1,) for sinograms zero-padded to P detectors.

    The ramp |f| (f in cycles per bin) is the transform of the band-limited ramp kernel
    h[0] = 1/4, h[odd k] = -1/(pi k)^2 (Kak & Slaney, eq. 61), times a window (as in
    ``skimage.transform.iradon``) and divided by the detector spacing in pixels.
    """
    size = max(64, 2 ** math.ceil(math.log2(2 * n_det)))
    k = torch.arange(size, device=device, dtype=torch.float64)
    k = torch.minimum(k, size - k)
    h = torch.where(k % 2 == 1, -1 / (math.pi * k.clamp(min=1)) ** 2, 0.0)
    h[0] = 0.25
    response = torch.fft.rfft(h).real
    f = torch.fft.rfftfreq(size, device=device, dtype=torch.float64)
    windows = {"ramp": torch.ones_like(f), "shepp-logan": torch.sinc(f), "cosine": torch.cos(math.pi * f),
               "hamming": 0.54 + 0.46 * torch.cos(2 * math.pi * f), "hann": 0.5 * (1 + torch.cos(2 * math.pi * f))}
    return (response * windows[window] / spacing).to(dtype)


def filter_sinogram(sinogram: torch.Tensor, window: str, spacing: float = 1.0) -> torch.Tensor:
    """Each view (last dim = detectors) convolved with the windowed ramp of :func:`fbp_filter`."""
    n_det = sinogram.shape[-1]
    h = fbp_filter(n_det, window, sinogram.dtype, sinogram.device, spacing)
    size = 2 * (len(h) - 1)
    return torch.fft.irfft(torch.fft.rfft(sinogram, n=size) * h, n=size)[..., :n_det]

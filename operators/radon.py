"""Parallel-beam Radon matrices (torch, built once) and the FBP ramp filter.

Geometry (as ``skimage.transform.radon(circle=True)``): rotation centre at pixel
(n//2, n//2), detector d at offset s = d - n_det//2 pixels, and the ray of angle θ
(radians) through s is the set of points (col, row) = (c + s cosθ + t sinθ,
c - s sinθ + t cosθ). Only pixels in the inscribed disc (distance <= n//2) count.
"""
from __future__ import annotations

import math
import warnings

import torch


def _disc(n: int) -> torch.Tensor:
    """(n*n,) bool: pixels within n//2 of the centre pixel (n//2, n//2)."""
    r = torch.arange(n, dtype=torch.float64) - n // 2
    return (r[:, None] ** 2 + r[None, :] ** 2 <= (n // 2) ** 2).reshape(-1)


Entries = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # COO (rows, cols, values)


def csr_parts(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n_rows: int, n_cols: int,
              dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(crow_indices, col_indices, values) of the CSR matrix with the given COO entries."""
    order = torch.argsort(rows * n_cols + cols)
    counts = torch.bincount(rows, minlength=n_rows)
    index_dtype = torch.int32 if max(len(vals), n_rows, n_cols) < 2**31 - 1 else torch.int64
    crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).to(index_dtype)
    return crow, cols[order].to(index_dtype), vals[order].to(dtype)


_BLOCK = 2 ** 20  # entries computed per block of views (bounds memory, keeps ops few and large)


def _view_blocks(angles: torch.Tensor, per_view: int):
    """Yield (index of the first view, float64 angles) for consecutive blocks of views."""
    angles = angles.to(torch.float64)
    size = max(1, _BLOCK // per_view)
    for start in range(0, len(angles), size):
        yield start, angles[start:start + size]


def projection_entries(n: int, angles: torch.Tensor, n_det: int) -> Entries:
    """COO entries of the Radon matrix (n_views * n_det, n * n), float64 (Joseph's method).

    Each ray is sampled once per image row when |cos θ| >= |sin θ| (else once per column),
    interpolating linearly between the two nearest pixels of that row (column) with the
    step length 1/|cos θ| (1/|sin θ|) as weight, so entries are line integrals in pixel units.
    """
    c, disc = n // 2, _disc(n)
    s = torch.arange(n_det, dtype=torch.float64)[:, None] - n_det // 2  # (D, 1)
    major = torch.arange(n)  # index along the sampled axis (row or column)
    rows, cols, vals = [], [], []
    for start, theta in _view_blocks(angles, n_det * n):
        cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]  # (V, 1, 1)
        by_row = cos.abs() >= sin.abs()
        lead, other = torch.where(by_row, cos, sin), torch.where(by_row, sin, cos)
        # position along the other axis: c + s/cos + (r - c) tan θ, or c - s/sin + (q - c) cot θ
        pos = c + torch.where(by_row, 1.0, -1.0) * s / lead + (major - c) * (other / lead)  # (V, D, n)
        lo = torch.floor(pos)
        frac = pos - lo
        ray = (start + torch.arange(len(theta)))[:, None, None] * n_det + torch.arange(n_det)[:, None]
        for minor, weight in ((lo.long(), 1 - frac), (lo.long() + 1, frac)):
            pixel = torch.where(by_row, major * n + minor, minor * n + major)
            keep = (minor >= 0) & (minor < n) & (weight > 0) & disc[pixel.clamp(0, n * n - 1)]
            rows.append(ray.expand_as(pixel)[keep])
            cols.append(pixel[keep])
            vals.append((weight / lead.abs())[keep])
    return torch.cat(rows), torch.cat(cols), torch.cat(vals)


def backprojection_entries(n: int, angles: torch.Tensor, n_det: int) -> Entries:
    """COO entries of the FBP back-projector (n * n, n_views * n_det), float64.

    Pixel p in the disc receives, per view, the sinogram linearly interpolated at its
    detector offset s = (col - c) cos θ - (row - c) sin θ.
    """
    c, disc = n // 2, _disc(n)
    pixel = torch.nonzero(disc).flatten()
    row, col = (pixel // n - c).double(), (pixel % n - c).double()
    rows, cols, vals = [], [], []
    for start, theta in _view_blocks(angles, len(pixel)):
        u = col * torch.cos(theta)[:, None] - row * torch.sin(theta)[:, None] + n_det // 2  # (V, P)
        lo = torch.floor(u)
        frac = u - lo
        first_ray = (start + torch.arange(len(theta)))[:, None] * n_det
        for det, weight in ((lo.long(), 1 - frac), (lo.long() + 1, frac)):
            keep = (det >= 0) & (det < n_det) & (weight > 0)
            rows.append(pixel.expand_as(det)[keep])
            cols.append((det + first_ray)[keep])
            vals.append(weight[keep])
    return torch.cat(rows), torch.cat(cols), torch.cat(vals)


def csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR view of stored parts (no copy)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, val, size=size, check_invariants=False)


def _spmm(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sparse a @ dense x (N, K); a matrix-vector product when K == 1 (faster on CPU)."""
    return torch.mv(a, x[:, 0]).unsqueeze(1) if x.shape[1] == 1 else torch.sparse.mm(a, x)


class SparseMatmul(torch.autograd.Function):
    """a @ x for a sparse matrix ``a`` and dense x (N, K); the backward multiplies by ``a_t``
    (the stored transpose, or ``a.t()`` when None) through the same function, so it is
    differentiable again."""

    @staticmethod
    def forward(x: torch.Tensor, a: torch.Tensor, a_t: torch.Tensor | None) -> torch.Tensor:
        return _spmm(a, x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.a, ctx.a_t = inputs[1], inputs[2]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a_t = ctx.a.t() if ctx.a_t is None else ctx.a_t
        return SparseMatmul.apply(grad, a_t, ctx.a), None, None


def ramp_filter(n_det: int, window: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """rfft-domain FBP filter (P // 2 + 1,) for sinograms zero-padded to P detectors.

    The ramp |f| (f in cycles per pixel) is the transform of the band-limited ramp kernel
    h[0] = 1/4, h[odd k] = -1/(pi k)^2 (Kak & Slaney, eq. 61), optionally times a window.
    """
    size = max(64, 2 ** math.ceil(math.log2(2 * n_det)))
    k = torch.arange(size, device=device, dtype=torch.float64)
    k = torch.minimum(k, size - k)
    h = torch.where(k % 2 == 1, -1 / (math.pi * k.clamp(min=1)) ** 2, 0.0)
    h[0] = 0.25
    response = torch.fft.rfft(h).real
    f = torch.fft.rfftfreq(size, device=device, dtype=torch.float64)
    windows = {"ramp": torch.ones_like(f), "shepp-logan": torch.sinc(f),
               "cosine": torch.cos(math.pi * f), "hann": 0.5 * (1 + torch.cos(2 * math.pi * f))}
    return (response * windows[window]).to(dtype)

"""2D parallel-beam CT: sparse Radon matrices as buffers, exact adjoint, filtered back-projection."""
from __future__ import annotations

import math

import torch

from scoremed.errors import InputError

from .base import DecomposableOperator, Shape, check_tensor
from .radon import SparseMatmul, backprojection_entries, csr, csr_parts, projection_entries, ramp_filter

WINDOWS = ("ramp", "shepp-logan", "cosine", "hann")


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


def _angles(a: object, name: str) -> torch.Tensor:
    t = torch.as_tensor(a, dtype=torch.float64) if not isinstance(a, torch.Tensor) else a.detach().double().cpu()
    if t.ndim != 1 or len(t) < 1 or not bool(torch.isfinite(t).all()):
        raise InputError(f"{name}: expected a non-empty 1-D sequence of finite angles in radians, got {a!r}")
    return t


class CT(DecomposableOperator):
    """Sparse-view parallel-beam CT: image (B, C, n, n) -> sinogram (B, C, n_views, n_detectors).

    Line integrals in pixel units over the disc inscribed in the image, rotation centre at
    pixel (n//2, n//2) and detector n_detectors//2 (the ``skimage.transform.radon(circle=True)``
    convention; angles in radians). Decomposition: T = Radon transform over ``full_angles``
    (default ``full_view_angles(180)``), ``mask`` (1, 1, n_full, 1) selects the measured
    views, ``inverse_transform`` = full-view FBP. Every angle must be one of ``full_angles``.
    Computed in the operator's dtype (float32 unless moved with ``.to(torch.float64)``).
    """

    kind = "ct"
    measurement_name = "sinogram"
    needs_full_precision = True   # filtered back-projection uses torch.fft

    def __init__(self, image_size: int, angles, n_detectors: int | None = None, full_angles=None):
        super().__init__()
        if not (isinstance(image_size, int) and image_size >= 2):
            raise InputError(f"image_size: expected an int >= 2, got {image_size!r}")
        n_det = image_size if n_detectors is None else n_detectors
        if not (isinstance(n_det, int) and n_det >= 1):
            raise InputError(f"n_detectors: expected an int >= 1, got {n_detectors!r}")
        full = full_view_angles() if full_angles is None else _angles(full_angles, "full_angles")
        angles = _angles(angles, "angles")
        dist = (angles[:, None] - full[None, :]).abs()
        nearest = dist.argmin(dim=1)
        if not bool((dist.min(dim=1).values < 1e-6).all()):
            raise InputError(f"angles: expected each angle to be one of full_angles ({len(full)} angles "
                             f"in [{full.min():.4g}, {full.max():.4g}] rad), got {angles.tolist()}")
        if len(nearest.unique()) != len(nearest):
            raise InputError(f"angles: expected distinct angles, got {angles.tolist()}")
        self.image_size, self.n_detectors = image_size, n_det
        dtype = torch.get_default_dtype()
        self.register_buffer("angles", full[nearest].to(dtype))
        self.register_buffer("full_angles", full.to(dtype))
        self.register_buffer("view_index", nearest)
        mask = torch.zeros(1, 1, len(full), 1)
        mask[:, :, nearest] = 1
        self.register_buffer("mask", mask)
        self._same_views = torch.equal(nearest, torch.arange(len(full)))
        self._sizes: dict[str, tuple[int, int]] = {}
        n_pix, n_rays, n_full_rays = image_size ** 2, len(nearest) * n_det, len(full) * n_det
        rows, cols, vals = projection_entries(image_size, full, n_det)
        if not self._same_views:
            self._add_matrix("full_proj", rows, cols, vals, (n_full_rays, n_pix))
            position = torch.full((len(full),), -1)  # full view -> measured view
            position[nearest] = torch.arange(len(nearest))
            measured = position[rows // n_det]
            keep = measured >= 0
            rows, cols, vals = measured[keep] * n_det + rows[keep] % n_det, cols[keep], vals[keep]
        self._add_matrix("proj", rows, cols, vals, (n_rays, n_pix))
        self._add_matrix("backproj", *backprojection_entries(image_size, full, n_det), (n_pix, n_full_rays),
                         transpose=False)

    def _add_matrix(self, name: str, rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor,
                    shape: tuple[int, int], transpose: bool = True) -> None:
        """Register the CSR parts of a matrix (and, if ``transpose``, of its transpose as
        ``name + '_t'``) as non-persistent buffers: derived data, not in the state dict."""
        dtype = torch.get_default_dtype()
        parts = {name: csr_parts(rows, cols, vals, *shape, dtype)}
        if transpose:
            parts[name + "_t"] = csr_parts(cols, rows, vals, shape[1], shape[0], dtype)
        for key, (crow, col, val) in parts.items():
            self._sizes[key] = shape if key == name else shape[::-1]
            self.register_buffer(f"_{key}_crow", crow, persistent=False)
            self.register_buffer(f"_{key}_col", col, persistent=False)
            self.register_buffer(f"_{key}_val", val, persistent=False)

    def _matrix(self, name: str) -> torch.Tensor:
        return csr(getattr(self, f"_{name}_crow"), getattr(self, f"_{name}_col"),
                   getattr(self, f"_{name}_val"), self._sizes[name])

    @property
    def image_shape(self) -> Shape:
        return (None, self.image_size, self.image_size)

    @property
    def measurement_shape(self) -> Shape:
        return (None, len(self.angles), self.n_detectors)

    def _matmul(self, name: str, t: torch.Tensor, out_shape: tuple[int, ...], transpose_name: str | None):
        """Matrix ``name`` applied to the flattened trailing dims of t (B, C, ...); the
        backward uses matrix ``transpose_name`` (or transposes on the fly when None)."""
        a = self._matrix(name)
        flat = t.reshape(t.shape[0] * t.shape[1], -1).T.to(a.dtype)
        out = SparseMatmul.apply(flat, a, self._matrix(transpose_name) if transpose_name else None)
        return out.T.reshape(*t.shape[:2], *out_shape).to(t.dtype).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, n, n) image -> (B, C, n_views, n_detectors) sinogram of the measured views."""
        x = self.check_image(x)
        return self._matmul("proj", x, (len(self.angles), self.n_detectors), "proj_t")

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Exact adjoint (back-projection without filter) -> (B, C, n, n)."""
        y = self._check_measurement_layout(y)
        return self._matmul("proj_t", y, (self.image_size, self.image_size), "proj")

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Full-view sinogram (B, C, n_full, n_detectors)."""
        x = self.check_image(x)
        if self._same_views:
            return self.forward(x)
        return self._matmul("full_proj", x, (len(self.full_angles), self.n_detectors), "full_proj_t")

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        """Measured views scattered into a zero full-view sinogram (B, C, n_full, n_detectors)."""
        y = self._check_measurement_layout(y)
        full = y.new_zeros(*y.shape[:2], len(self.full_angles), self.n_detectors)
        return full.index_copy(2, self.view_index, y)

    def _check_window(self, window: str) -> None:
        if window not in WINDOWS:
            raise InputError(f"window: expected one of {WINDOWS}, got {window!r}")

    def _fbp(self, full_sinogram: torch.Tensor, n_views: int, window: str) -> torch.Tensor:
        """FBP of a full-view sinogram in which ``n_views`` views are non-zero."""
        h = ramp_filter(self.n_detectors, window, full_sinogram.dtype, full_sinogram.device)
        size = 2 * (len(h) - 1)
        filtered = torch.fft.irfft(torch.fft.rfft(full_sinogram, n=size) * h, n=size)[..., : self.n_detectors]
        image = self._matmul("backproj", filtered, (self.image_size, self.image_size), None)
        return image * (math.pi / n_views)

    def inverse_transform(self, k: torch.Tensor, window: str = "ramp") -> torch.Tensor:
        """Full-view FBP: (B, C, n_full, n_detectors) -> (B, C, n, n), zero outside the disc."""
        shape = (None, len(self.full_angles), self.n_detectors)
        k = self._check_device(check_tensor(k, "k", shape, "real", "full-view sinogram"), "k")
        self._check_window(window)
        return self._fbp(k, len(self.full_angles), window)

    def pseudo_inverse(self, y: torch.Tensor, window: str = "ramp") -> torch.Tensor:
        """FBP from the measured views, scaled like ``skimage.transform.iradon``."""
        y = self.check_measurement(y)
        self._check_window(window)
        return self._fbp(self.embed(y), len(self.angles), window)

    def extra_repr(self) -> str:
        return (f"image_size={self.image_size}, n_views={len(self.angles)}, "
                f"n_detectors={self.n_detectors}, n_full={len(self.full_angles)}")

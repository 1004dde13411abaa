"""Single-coil Cartesian MRI: y = M F x with the centred orthonormal 2D FFT F."""
from __future__ import annotations

import torch

from scoremed.errors import InputError

from .base import DecomposableOperator, Shape, check_binary_mask, describe, real_dtype

_DIMS = (-2, -1)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2D FFT over the last two dims: fftshift(fft2(ifftshift(x)))."""
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=_DIMS), norm="ortho"), dim=_DIMS)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Inverse of ``fft2c`` (and its adjoint)."""
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=_DIMS), norm="ortho"), dim=_DIMS)


def check_kspace_mask(mask: object) -> torch.Tensor:
    """A 0/1 (H, W) or line (1, W) mask as float32; InputError otherwise."""
    mask = check_binary_mask(mask, "mask")
    if mask.ndim != 2:
        raise InputError(f"mask: expected a 2-D k-space mask of shape (H, W) or (1, W), got {describe(mask)}")
    return mask


class MRI(DecomposableOperator):
    """Single-coil Cartesian MRI.

    ``mask``: (H, W), or (1, W) for whole phase-encode lines; 1 = sampled. Images are
    (B, C, H, W), real (default) or complex with ``complex_images=True``; k-space is
    complex (complex64 for float32 images) on the full grid, zero where unsampled.
    T = ``fft2c``; with real images ``adjoint``, ``inverse_transform`` and
    ``pseudo_inverse`` return the real part (the adjoint for Re<., .>).
    """

    kind = "mri"
    measurement_name = "k-space"
    complex_measurement = True
    needs_full_precision = True

    def __init__(self, mask: torch.Tensor, complex_images: bool = False):
        super().__init__()
        self.register_buffer("mask", check_kspace_mask(mask))
        self.complex_images = bool(complex_images)

    @property
    def image_shape(self) -> Shape:
        h, w = self.mask.shape
        return (None, None if h == 1 else h, w)

    @property
    def measurement_shape(self) -> Shape:
        return self.image_shape

    def _masked(self, k: torch.Tensor) -> torch.Tensor:
        return k * self.mask.to(real_dtype(k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) image -> (B, C, H, W) complex k-space."""
        return self._masked(fft2c(self.check_image(x)))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._image_output(ifft2c(self._masked(self._check_measurement_layout(y))))

    def pseudo_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Zero-filled inverse FFT."""
        return self._image_output(ifft2c(self._masked(self.check_measurement(y))))

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return fft2c(self.check_image(x))

    def inverse_transform(self, k: torch.Tensor) -> torch.Tensor:
        return self._image_output(ifft2c(self._check_measurement_layout(k, "k")))

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        return self._masked(self._check_measurement_layout(y))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, complex_images={self.complex_images}"

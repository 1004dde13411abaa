"""Single-coil Cartesian MRI: y = M F x with the centred orthonormal 2D FFT F."""
from __future__ import annotations

import torch

from scoremed.errors import InputError

from .base import DecomposableOperator, Shape
from .checks import check_binary_mask, check_rho, describe
from .primitives import FFT, Mask, fft2c, hermitian_flip, ifft2c

__all__ = ["MRI", "check_kspace_mask", "fft2c", "ifft2c"]


def check_kspace_mask(mask: object) -> torch.Tensor:
    """A 0/1 (H, W) or line (1, W) mask as float32; InputError otherwise."""
    mask = check_binary_mask(mask, "mask")
    if mask.ndim != 2:
        raise InputError(f"mask: expected a 2-D k-space mask of shape (H, W) or (1, W), got {describe(mask)}")
    return mask


class MRI(DecomposableOperator):
    """Single-coil Cartesian MRI, composed as ``Mask(mask) @ FFT()``.

    ``mask``: (H, W), or (1, W) for whole phase-encode lines; 1 = sampled. Images are
    (B, C, H, W), real (default) or complex with ``complex_images=True``; k-space is
    complex (complex64 for float32 images) on the full grid, zero where unsampled.
    T = ``fft2c``; with real images ``adjoint``, ``inverse_transform`` and
    ``pseudo_inverse`` return the real part (the adjoint for Re<., .>). A^H A is diagonal in
    k-space, so ``prox_l2`` is exact.
    """

    kind = "mri"
    measurement_name = "k-space"
    complex_measurement = True
    needs_full_precision = True
    preserves_shape = True
    has_prox_l2 = True
    #: one coil: the channels of y are separate images (:class:`MultiCoilMRI`: coils of one image)
    multicoil = False

    def __init__(self, mask: torch.Tensor, complex_images: bool = False):
        super().__init__()
        self.sampling, self.fft = Mask(check_kspace_mask(mask)), FFT()
        self.op = self.sampling @ self.fft
        self.complex_images = bool(complex_images)

    @property
    def mask(self) -> torch.Tensor:
        """The sampling mask (H, W) or (1, W)."""
        return self.sampling.mask

    @property
    def image_shape(self) -> Shape:
        return self.op.image_shape

    @property
    def measurement_shape(self) -> Shape:
        return self.image_shape

    def pseudo_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Zero-filled inverse FFT."""
        return self.adjoint(self.check_measurement(y))

    def prox_l2(self, v: torch.Tensor, y: torch.Tensor, rho: float | torch.Tensor) -> torch.Tensor:
        """Exact: x = v + F^H [F r / (M + rho)] on the frequencies M samples, r = A^H (y - A v).

        Complex v: M is the mask. Real v: the normal operator on real images, Re(F^H M F), is
        F^H M_s F with the Hermitian-symmetrised mask M_s = (M(k) + M(-k)) / 2.
        """
        v, y = self.check_image(v, "v"), self._check_measurement_layout(y)
        mask = self.sampling.weight_for(v)
        if not v.is_complex():
            mask = (mask + hermitian_flip(mask)) / 2
        r = self.adjoint(y - self(v))
        gain = torch.where(mask > 0, 1 / (mask + check_rho(rho, v)), 0)
        x = v + ifft2c(fft2c(r.real if not v.is_complex() else r) * gain)
        return x.real if not v.is_complex() else x

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return self.fft(self.check_image(x))

    def inverse_transform(self, k: torch.Tensor) -> torch.Tensor:
        return self._image_output(self.fft.adjoint(self._check_measurement_layout(k, "k")))

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        return self.sampling(self._check_measurement_layout(y))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, complex_images={self.complex_images}"

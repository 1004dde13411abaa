"""Primitive operators the named ones are composed of: pointwise products, 0/1 masks, the centred FFT.

This is the only place in operators/ where a mask multiply or an FFT is written.
"""
from __future__ import annotations

import torch

from scoremed.errors import InputError

from .base import LinearOperator, Shape
from .checks import check_binary_mask, complex_dtype, describe, real_dtype

__all__ = ["Multiply", "Mask", "FFT", "fft2c", "ifft2c", "hermitian_flip"]

_DIMS = (-2, -1)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2D FFT over the last two dims: fftshift(fft2(ifftshift(x)))."""
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=_DIMS), norm="ortho"), dim=_DIMS)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Inverse of ``fft2c`` (and its adjoint)."""
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=_DIMS), norm="ortho"), dim=_DIMS)


def hermitian_flip(k: torch.Tensor) -> torch.Tensor:
    """k at the negated frequencies of the centred grid (last two dims): for real x,
    ``fft2c(x) == hermitian_flip(fft2c(x)).conj()``."""
    for dim in _DIMS:
        k = torch.flip(k, (dim,))
        if k.shape[dim] % 2 == 0:   # even size: frequency -N/2 has no partner, index j pairs with N - j
            k = torch.roll(k, 1, dim)
    return k


class Multiply(LinearOperator):
    """y = w * x for a fixed real or complex tensor w broadcast against the image (B, *image_shape).

    ``weight`` aligns with the trailing image dims. ``image_shape`` (default: the
    weight's sizes, free where the weight has size 1 or is missing) may have size 1
    where the weight is larger: the product then expands the image, e.g. one image
    times Ncoil coil maps, and the adjoint sums over that dim. Complex weights are
    stored as a real view (buffer ``factor_real``; real ones as ``factor``) so ``.to(dtype)`` keeps their imaginary part.
    """

    def __init__(self, weight: torch.Tensor, image_shape: Shape | None = None, ndim: int = 3):
        super().__init__()
        if not (isinstance(weight, torch.Tensor) and (weight.is_floating_point() or weight.is_complex())
                and 1 <= weight.ndim <= ndim and weight.numel() > 0):
            got = describe(weight) if isinstance(weight, torch.Tensor) else type(weight).__name__
            raise InputError(f"weight: expected a non-empty real or complex tensor with at most {ndim} dims, got {got}")
        self.is_complex = weight.is_complex()
        stored = torch.view_as_real(weight.detach().to(torch.complex64)) if self.is_complex else weight.detach()
        self.register_buffer("factor_real" if self.is_complex else "factor", stored.clone())
        sizes = (1,) * (ndim - weight.ndim) + tuple(weight.shape)
        if image_shape is None:
            image_shape = tuple(None if s == 1 else s for s in sizes)
        image_shape = tuple(image_shape)
        if len(image_shape) != ndim or any(i is not None and i not in (1, w) and w != 1
                                           for i, w in zip(image_shape, sizes)):
            raise InputError(f"image_shape: expected {ndim} sizes that broadcast against the weight "
                             f"{tuple(weight.shape)}, got {image_shape!r}")
        self._image_shape = image_shape
        self._measurement_shape = tuple(None if i is None and w == 1 else (w if i in (None, 1) and w != 1 else i)
                                        for i, w in zip(image_shape, sizes))

    @property
    def weight(self) -> torch.Tensor:
        """The weight, complex again if it was complex."""
        return torch.view_as_complex(self.factor_real) if self.is_complex else self.factor

    @property
    def image_shape(self) -> Shape:
        return self._image_shape

    @property
    def measurement_shape(self) -> Shape:
        return self._measurement_shape

    @property
    def preserves_shape(self) -> bool:  # type: ignore[override]
        return self._image_shape == self._measurement_shape

    image_domain = property(lambda self: "real or complex")
    measurement_domain = property(lambda self: "complex" if self.is_complex else "real or complex")
    complex_images = property(lambda self: True)
    complex_measurement = property(lambda self: self.is_complex)

    def weight_for(self, t: torch.Tensor) -> torch.Tensor:
        """The weight in the precision of ``t`` (complex64/128 for complex weights)."""
        dtype = complex_dtype(real_dtype(t)) if self.is_complex else real_dtype(t)
        return self.weight.to(dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight_for(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        w = self.weight_for(y)
        product = y * (w.conj() if w.is_complex() else w)
        size = [b if s is None else s for b, s in zip(y.shape[1:], self._image_shape)]
        return product.sum_to_size(y.shape[0], *size)

    def extra_repr(self) -> str:
        return f"image_shape={self._image_shape}, measurement_shape={self._measurement_shape}"


class Mask(Multiply):
    """y = mask * x for a 0/1 (or bool) ``mask`` aligned with the trailing image dims; self-adjoint."""

    has_prox_l2 = True

    def __init__(self, mask: torch.Tensor, image_shape: Shape | None = None, name: str = "mask", ndim: int = 3):
        super().__init__(check_binary_mask(mask, name), image_shape, ndim)

    @property
    def mask(self) -> torch.Tensor:
        """The 0/1 mask (float)."""
        return self.factor

    def pseudo_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The masked measurement (unknown entries 0)."""
        return self.adjoint(self.check_measurement(y))

    def prox_l2(self, v: torch.Tensor, y: torch.Tensor, rho: float | torch.Tensor) -> torch.Tensor:
        """Exact: A^H A is the mask, a projection: v + mask (y - mask v) / (1 + rho)."""
        return self._projection_prox(v, y, rho, 1.0)


class FFT(LinearOperator):
    """The centred orthonormal 2D FFT over the last two dims (``fft2c``): unitary, so A^H = A^{-1}."""

    needs_full_precision = True
    preserves_shape = True
    measurement_name = "k-space"
    image_domain = property(lambda self: "real or complex")
    measurement_domain = property(lambda self: "complex")
    complex_images = True
    complex_measurement = True

    def __init__(self, ndim: int = 3):
        super().__init__()
        self._shape = (None,) * ndim

    @property
    def image_shape(self) -> Shape:
        return self._shape

    @property
    def measurement_shape(self) -> Shape:
        return self._shape

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return fft2c(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return ifft2c(y)

    def pseudo_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse FFT."""
        return self.adjoint(self.check_measurement(y))

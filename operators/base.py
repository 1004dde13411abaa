"""The operator protocol: ``LinearOperator`` and ``DecomposableOperator`` (A = P(Λ) T).

Operators are ``torch.nn.Module`` s with batch-first tensors. Masks, angles and maps are
buffers, so ``.to(device)`` / ``.to(dtype)`` move them. ``forward`` / ``adjoint`` only
check shapes, dtypes and devices around a private ``_forward`` / ``_adjoint`` (no host
synchronisation: they run inside sampling loops, whose divergence watch catches NaN/Inf
instead); ``check_measurement`` and ``pseudo_inverse`` also reject non-finite values.

Operators compose like sigpy linops: ``A @ B``, ``A.H``, ``2 * A``, ``A + B``, ``A - B``
(see :mod:`scoremed.operators.algebra`), and ``A.norm()`` is computed once per image
shape by power iteration and cached.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from scoremed.errors import InputError

from .checks import Shape, check_finite, check_tensor, complex_dtype, describe

__all__ = ["LinearOperator", "DecomposableOperator", "Shape", "is_scalar"]


def is_scalar(value: object) -> bool:
    """True for a Python / NumPy number or a 0-d tensor (not a bool)."""
    if isinstance(value, torch.Tensor):
        return value.ndim == 0
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


class LinearOperator(nn.Module):
    """A linear map y = A x between batched images (B, *image_shape) and measurements.

    Subclasses set ``kind`` ("inpaint", "colorize", "mri", "mri-multicoil", "ct", "" for
    generic operators), ``measurement_name`` and the domains, implement ``image_shape``
    and ``measurement_shape`` and either set ``self.op`` (the composition of primitives
    they are built from) or override ``_forward`` / ``_adjoint``. ``adjoint`` is the
    adjoint for Re<., .>; outputs follow the input's precision.
    """

    kind: str = ""
    measurement_name: str = "measurement"
    complex_measurement: bool = False
    complex_images: bool = False
    #: True for FFT-based operators: torch.fft has no float16 / bfloat16 kernels on the CPU
    needs_full_precision: bool = False
    #: True if the measurement has the image's shape wherever the image shape is free
    #: (masks, FFTs, pointwise products): lets compositions carry shape constraints through
    preserves_shape: bool = False

    # --- shapes and domains -------------------------------------------------------------
    @property
    def image_shape(self) -> Shape:
        """Image shape without batch; None for a size the operator does not fix."""
        raise NotImplementedError

    @property
    def measurement_shape(self) -> Shape:
        """Measurement shape without batch; None for a size the operator does not fix."""
        raise NotImplementedError

    @property
    def image_domain(self) -> str:
        """"real", "complex" or "real or complex": the images ``forward`` accepts."""
        return "real or complex" if self.complex_images else "real"

    @property
    def measurement_domain(self) -> str:
        """"real", "complex" or "real or complex" (= the input's domain)."""
        return "complex" if self.complex_measurement else "real"

    # --- application --------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x for images (B, *image_shape)."""
        return self._forward(self.check_image(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^H y for measurements (B, *measurement_shape); real images get the real part."""
        return self._image_output(self._adjoint(self._check_measurement_layout(y)))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(y)

    def pseudo_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Classical direct reconstruction from y; rejects non-finite y.

        Generic operators use the scaled adjoint A^H y / ||A||^2 (exact when
        A A^H = ||A||^2 I); the named operators override it (zero-filled IFFT, FBP, ...).
        """
        y = self.check_measurement(y)
        norm = self.norm(device=y.device)
        return self.adjoint(y) / (norm * norm if norm > 0 else 1.0)

    # --- checks -------------------------------------------------------------------------
    def check_image(self, x: object, name: str = "x") -> torch.Tensor:
        """Raise InputError unless ``x`` has the image shape, a valid dtype and the operator's device."""
        return self._check_device(check_tensor(x, name, self.image_shape, self.image_domain, "image"), name)

    def check_measurement(self, y: object, name: str = "y") -> torch.Tensor:
        """Raise InputError unless ``y`` has the measurement shape, dtype and finite values."""
        self._check_measurement_layout(y, name)
        check_finite(y, name)
        return y

    def _check_measurement_layout(self, y: object, name: str = "y") -> torch.Tensor:
        return self._check_device(check_tensor(y, name, self.measurement_shape, self.measurement_domain,
                                               self.measurement_name), name)

    def _check_device(self, t: torch.Tensor, name: str) -> torch.Tensor:
        """Precision and device of a tensor that passed :func:`check_tensor`."""
        if self.needs_full_precision and t.dtype in (torch.float16, torch.bfloat16, torch.complex32):
            raise InputError(f"{name}: expected float32/float64 (or complex64/complex128) for this FFT-based "
                             f"operator, got {describe(t)}; convert with .float()")
        device = self.device
        if device is not None and device != t.device:
            raise InputError(f"{name}: expected a tensor on the operator's device {device}, got one on "
                             f"{t.device}; move one of them with .to(device)")
        return t

    @property
    def device(self) -> torch.device | None:
        """Device of the operator's buffers and parameters (None if it has none)."""
        for tensor in self.buffers():
            return tensor.device
        for tensor in self.parameters():
            return tensor.device
        return None

    def _image_output(self, x: torch.Tensor) -> torch.Tensor:
        """Drop the imaginary part if the operator works with real images."""
        return x.real.contiguous() if x.is_complex() and self.image_domain == "real" else x

    # --- algebra ------------------------------------------------------------------------
    @property
    def H(self) -> LinearOperator:  # noqa: N802 (sigpy / numpy name)
        """The adjoint operator A^H (created once; ``A.H.H is A``)."""
        cached = self.__dict__.get("_adjoint_op")
        if cached is None:
            from .algebra import Adjoint

            cached = self.__dict__["_adjoint_op"] = Adjoint(self)
        return cached

    def __matmul__(self, other: object) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        from .algebra import Compose

        return Compose(self, other)

    def __mul__(self, other: object) -> LinearOperator:
        if not is_scalar(other):
            return NotImplemented
        from .algebra import Scaled

        return Scaled(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> LinearOperator:
        return self * (1 / other) if is_scalar(other) else NotImplemented

    def __neg__(self) -> LinearOperator:
        return self * -1

    def __add__(self, other: object) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        from .algebra import Sum

        return Sum(self, other)

    def __sub__(self, other: object) -> LinearOperator:
        return self + (-other) if isinstance(other, LinearOperator) else NotImplemented

    # --- norm ---------------------------------------------------------------------------
    def norm(self, image_shape: Shape | None = None, *, device=None, max_iter: int = 100,
             tol: float = 1e-4) -> float:
        """||A||_2 on images of ``image_shape`` (default: the operator's; free sizes = 1), cached.

        Power iteration on A^H A from a fixed random start (seed 0), stopped when the
        estimate changes by less than ``tol`` (relative); it approaches the norm from
        below. The value is cached per image shape.
        """
        shape = self._full_image_shape(image_shape)
        cache = self.__dict__.setdefault("_norms", {})
        if shape not in cache:
            cache[shape] = self._power_iteration(shape, device, max_iter, tol)
        return cache[shape]

    def _full_image_shape(self, image_shape: Shape | None) -> tuple[int, ...]:
        own = self.image_shape
        shape = own if image_shape is None else tuple(image_shape)
        if len(shape) != len(own) or any(s is not None and (s < 1 or (o is not None and o != s))
                                         for s, o in zip(shape, own)):
            raise InputError(f"image_shape: expected {len(own)} positive sizes fitting the operator's image shape "
                             f"{own}, got {image_shape!r}")
        return tuple((1 if o is None else o) if s is None else s for s, o in zip(shape, own))

    def _power_iteration(self, shape: tuple[int, ...], device, max_iter: int, tol: float) -> float:
        dtype = next((b.dtype for b in self.buffers() if b.is_floating_point()), torch.float32)
        device = device if device is not None else (self.device or "cpu")
        g = torch.Generator().manual_seed(0)
        v = torch.randn((1, *shape), generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
        v = (v.to(complex_dtype(dtype)) if self.image_domain == "complex" else v) / torch.linalg.vector_norm(v)
        estimate = 0.0
        for _ in range(max_iter):
            w = self.adjoint(self(v))
            previous, estimate = estimate, float(torch.linalg.vector_norm(w))
            if estimate == 0.0 or not math.isfinite(estimate):
                break
            v = w / estimate
            if abs(estimate - previous) <= tol * estimate:
                break
        return math.sqrt(estimate) if math.isfinite(estimate) else estimate

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, image_shape={self.image_shape}"


class DecomposableOperator(LinearOperator):
    """A = P(Λ) T: an invertible transform T followed by keeping the entries where Λ = 1.

    Adds ``transform`` (T x), ``inverse_transform`` (T^{-1} k), the buffer ``mask`` (Λ,
    0/1, broadcastable against ``transform(x)``) and ``embed`` (y placed in the transform
    domain, zeros where unmeasured), with ``embed(forward(x)) == mask * transform(x)``.
    """

    mask: torch.Tensor

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """T x; accepts real image-space tensors (e.g. noise)."""
        raise NotImplementedError

    def inverse_transform(self, k: torch.Tensor) -> torch.Tensor:
        """T^{-1} k."""
        raise NotImplementedError

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        """The measurement y in the transform domain, zeros where unmeasured."""
        raise NotImplementedError

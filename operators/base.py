"""The operator protocol: ``LinearOperator`` and ``DecomposableOperator`` (A = P(Λ) T).

Operators are ``torch.nn.Module`` s with batch-first tensors. Masks, angles and matrices
are buffers, so ``.to(device)`` / ``.to(dtype)`` move them. ``forward`` / ``adjoint`` only
check shapes, dtypes and devices (no host synchronisation: they run inside sampling loops,
whose divergence watch catches NaN/Inf instead); ``check_measurement`` and
``pseudo_inverse`` also reject non-finite values.
"""
from __future__ import annotations

import torch
from torch import nn

from scoremed.errors import InputError

Shape = tuple[int | None, ...]


def describe(t: torch.Tensor) -> str:
    """``'float32 (2, 1, 32, 32)'``: dtype and shape of ``t`` for error messages."""
    return f"{str(t.dtype).removeprefix('torch.')} {tuple(t.shape)}"


def format_shape(shape: Shape) -> str:
    """``(B, C, 64, 64)`` for the per-sample shape ``(None, 64, 64)``."""
    return "(" + ", ".join(["B"] + ["C" if s is None else str(s) for s in shape]) + ")"


def check_tensor(t: object, name: str, shape: Shape, domain: str, what: str) -> torch.Tensor:
    """Raise InputError unless ``t`` is a (B, *shape) tensor of the given domain.

    ``domain`` is ``"real"`` (floating point), ``"complex"`` or ``"real or complex"``;
    ``None`` entries of ``shape`` match any size.
    """
    expected = f"{domain} {what} of shape {format_shape(shape)}"
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor ({expected}), got {type(t).__name__}")
    dtype_ok = {"real": t.is_floating_point(), "complex": t.is_complex(),
                "real or complex": t.is_floating_point() or t.is_complex()}[domain]
    shape_ok = t.ndim == len(shape) + 1 and all(e is None or e == s for e, s in zip(shape, t.shape[1:]))
    if not (dtype_ok and shape_ok):
        raise InputError(f"{name}: expected {expected}, got {describe(t)}")
    if t.device.type == "meta":
        raise InputError(f"{name}: expected a tensor with data (cpu or cuda), got a meta tensor")
    if t.numel() == 0:
        raise InputError(f"{name}: expected a non-empty {what} (B >= 1, C >= 1), got {describe(t)}")
    return t


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise InputError if ``t`` holds NaN or Inf (synchronises with the device)."""
    bad = int((~torch.isfinite(t)).sum())
    if bad:
        raise InputError(f"{name}: expected finite values, got {bad} NaN/Inf entries in {describe(t)}")


def check_binary_mask(mask: object, name: str = "mask") -> torch.Tensor:
    """A bool or 0/1 tensor as a float32 tensor; InputError otherwise."""
    if not isinstance(mask, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor of 0/1 values, got {type(mask).__name__}")
    if mask.numel() == 0 or mask.device.type == "meta":
        raise InputError(f"{name}: expected a non-empty tensor of 0/1 values, got {describe(mask)} on {mask.device}")
    if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
        raise InputError(f"{name}: expected only 0/1 (or bool) values, got {describe(mask)} "
                         f"with values outside {{0, 1}}")
    return mask.detach().to(torch.float32)


def real_dtype(t: torch.Tensor) -> torch.dtype:
    """The real dtype matching ``t`` (float32 for complex64 ...)."""
    return t.real.dtype if t.is_complex() else t.dtype


class LinearOperator(nn.Module):
    """A linear map y = A x between batched images (B, *image_shape) and measurements.

    Subclasses set ``kind`` ("inpaint", "colorize", "mri", "mri-multicoil", "ct"),
    ``measurement_name`` and ``complex_measurement``, and implement ``image_shape``,
    ``measurement_shape``, ``forward``, ``adjoint`` and ``pseudo_inverse``. ``adjoint`` is the
    adjoint for Re<., .>; outputs follow the input's precision.
    """

    kind: str = ""
    measurement_name: str = "measurement"
    complex_measurement: bool = False
    complex_images: bool = False
    #: True for FFT-based operators: torch.fft has no float16 / bfloat16 kernels on the CPU
    needs_full_precision: bool = False

    @property
    def image_shape(self) -> Shape:
        """Image shape without batch; None for a size the operator does not fix."""
        raise NotImplementedError

    @property
    def measurement_shape(self) -> Shape:
        """Measurement shape without batch; None for a size the operator does not fix."""
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^H y."""
        raise NotImplementedError

    def pseudo_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Classical direct reconstruction from y; rejects non-finite y."""
        raise NotImplementedError

    def check_image(self, x: object, name: str = "x") -> torch.Tensor:
        """Raise InputError unless ``x`` has the image shape, a valid dtype and the operator's device."""
        domain = "real or complex" if self.complex_images else "real"
        return self._check_device(check_tensor(x, name, self.image_shape, domain, "image"), name)

    def check_measurement(self, y: object, name: str = "y") -> torch.Tensor:
        """Raise InputError unless ``y`` has the measurement shape, dtype and finite values."""
        self._check_measurement_layout(y, name)
        check_finite(y, name)
        return y

    def _check_measurement_layout(self, y: object, name: str = "y") -> torch.Tensor:
        domain = "complex" if self.complex_measurement else "real"
        return self._check_device(check_tensor(y, name, self.measurement_shape, domain, self.measurement_name), name)

    def _check_device(self, t: torch.Tensor, name: str) -> torch.Tensor:
        """Precision and device of a tensor that passed :func:`check_tensor`."""
        if self.needs_full_precision and t.dtype in (torch.float16, torch.bfloat16, torch.complex32):
            raise InputError(f"{name}: expected float32/float64 (or complex64/complex128) for this FFT-based "
                             f"operator, got {describe(t)}; convert with .float()")
        buffer = next(self.buffers(), None)
        if buffer is not None and buffer.device != t.device:
            raise InputError(f"{name}: expected a tensor on the operator's device {buffer.device}, got one on "
                             f"{t.device}; move one of them with .to(device)")
        return t

    def _image_output(self, x: torch.Tensor) -> torch.Tensor:
        """Drop the imaginary part unless the operator works with complex images."""
        return x if self.complex_images or not x.is_complex() else x.real.contiguous()

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

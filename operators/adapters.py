"""Bring your own operator: :func:`as_operator` turns modules, callables and deepinv physics into operators.

Accepted (checked in this order):

- a scoremed :class:`LinearOperator`: returned unchanged;
- an object with ``A`` and ``A_adjoint`` methods, such as a deepinv ``LinearPhysics``
  (duck-typed, deepinv is never imported): ``A`` is the forward map (the physics'
  ``forward`` adds noise, so it is not used), ``A_adjoint`` the adjoint and ``A_dagger``,
  if present, the pseudo-inverse;
- a callable (``nn.Module`` or function) with an ``adjoint`` method: both are used;
- any other callable (a linear ``nn.Module``, a function): its adjoint comes from autograd,
  A^H y = d/dx Re<A x, y>, which is exact for linear maps.

The image shape comes from ``image_shape`` (or deepinv's ``img_size``); one probe
evaluation at wrap time gives the measurement shape and domain and checks that the
adjoint runs. Linearity is not assumed silently: :func:`scoremed.operators.testing.check_operator`
measures it.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from scoremed.errors import InputError

from .base import LinearOperator, Shape
from .checks import complex_dtype, describe, real_dtype

__all__ = ["as_operator", "WrappedOperator"]


def _style(op: object) -> str:
    if callable(getattr(op, "A", None)) and callable(getattr(op, "A_adjoint", None)):
        return "deepinv"
    if callable(op) and callable(getattr(op, "adjoint", None)):
        return "adjoint"
    return "autograd" if callable(op) else ""


def _source_placement(op: object) -> tuple[torch.device, torch.dtype]:
    """Device and real dtype of a module's first floating tensor (cpu, float32 otherwise)."""
    if isinstance(op, nn.Module):
        for tensor in (*op.parameters(), *op.buffers()):
            if tensor.is_floating_point() or tensor.is_complex():
                return tensor.device, real_dtype(tensor)
    return torch.device("cpu"), torch.float32


def _probe(op: object, image_shape: object, complex_images: bool, name: str) -> torch.Tensor:
    """A zero image (1, *image_shape) in the operator's device and precision (real, or complex)."""
    if image_shape is None:
        image_shape = getattr(op, "img_size", None)  # deepinv's LinearPhysics attribute
    if isinstance(image_shape, torch.Tensor):
        if image_shape.ndim < 2 or image_shape.numel() == 0:
            raise InputError(f"image_shape: expected an example input (B, C, ...) or a shape (C, ...), "
                             f"got a tensor {describe(image_shape)}")
        return torch.zeros_like(image_shape[:1])
    if image_shape is None:
        raise InputError(f"{name}: cannot tell which images a {type(op).__name__} takes; give "
                         "scoremed.operators.as_operator(operator, image_shape=(C, H, W)) (solve and "
                         "sample_posterior pass the prior's image shape)")
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list, torch.Size)) else None
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise InputError(f"image_shape: expected the per-image shape (C, H, W) as positive ints, got {image_shape!r}")
    device, dtype = _source_placement(op)
    return torch.zeros((1, *shape), dtype=complex_dtype(dtype) if complex_images else dtype, device=device)


def as_operator(op: object, image_shape: Shape | torch.Tensor | None = None, *,
                adjoint: Callable[[torch.Tensor], torch.Tensor] | None = None, complex_images: bool = False,
                name: str = "operator") -> LinearOperator:
    """``op`` as a scoremed :class:`LinearOperator` (see the module docstring for what is accepted).

    Args:
        op: a scoremed operator (returned as is), a deepinv-style physics, an ``nn.Module``
            or a callable mapping images (B, *image_shape) to measurements (B, ...).
        image_shape: the per-image shape (C, H, W), or an example input (B, C, H, W) whose
            dtype and device are used for the probe; not needed for scoremed operators.
        adjoint: an explicit adjoint callable (overrides autograd / ``adjoint`` / ``A_adjoint``).
        complex_images: probe with complex images (for operators on complex images).
        name: the argument name used in error messages.
    """
    if isinstance(op, LinearOperator):
        return op
    if not _style(op):
        raise InputError(f"{name}: expected a scoremed operator, a linear nn.Module or callable mapping images to "
                         f"measurements, or a deepinv physics (A / A_adjoint), got {type(op).__name__}")
    if adjoint is not None and not callable(adjoint):
        raise InputError(f"adjoint: expected a callable, got {type(adjoint).__name__}")
    return WrappedOperator(op, _probe(op, image_shape, complex_images, name), adjoint=adjoint, name=name)


class WrappedOperator(LinearOperator):
    """A foreign linear map behind the operator protocol (made by :func:`as_operator`).

    ``source`` is the wrapped object (an ``nn.Module`` source is a submodule, so
    ``.to(device)`` moves it); shapes and domains come from the probe evaluation.
    """

    def __init__(self, source: object, probe: torch.Tensor, adjoint: Callable | None = None,
                 name: str = "operator"):
        super().__init__()
        self.source, self.style, self._explicit_adjoint = source, _style(source), adjoint
        self._image_shape = tuple(probe.shape[1:])
        self.complex_images = probe.is_complex()
        out = self._probe_call(lambda: self._forward(probe), probe, "forward", name)
        if not (isinstance(out, torch.Tensor) and (out.is_floating_point() or out.is_complex())
                and out.ndim >= 2 and out.shape[0] == 1 and out.numel() > 0):
            got = describe(out) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InputError(f"{name}: on an image {describe(probe)} it returned {got}; expected a non-empty real or "
                             "complex tensor with the batch dim first (1, ...)")
        self._measurement_shape = tuple(out.shape[1:])
        self.complex_measurement = out.is_complex()
        back = self._probe_call(lambda: self._adjoint(torch.zeros_like(out)), probe, "adjoint", name)
        if not isinstance(back, torch.Tensor) or tuple(back.shape) != tuple(probe.shape):
            got = describe(back) if isinstance(back, torch.Tensor) else type(back).__name__
            raise InputError(f"{name}: its adjoint returned {got} for a measurement {describe(out)}; expected an "
                             f"image of shape {tuple(probe.shape)}")

    def _probe_call(self, call: Callable, probe: torch.Tensor, what: str, name: str):
        try:
            return call()
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 (any failure of foreign code is reported as bad input)
            hint = "; give adjoint=... to as_operator" if what == "adjoint" and self.style == "autograd" else ""
            raise InputError(f"{name}: its {what} failed on a probe image {describe(probe)} "
                             f"({type(err).__name__}: {err}){hint}") from err

    @property
    def image_shape(self) -> Shape:
        return self._image_shape

    @property
    def measurement_shape(self) -> Shape:
        return self._measurement_shape

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.source.A(x) if self.style == "deepinv" else self.source(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if self._explicit_adjoint is not None:
            return self._explicit_adjoint(y)
        if self.style == "deepinv":
            return self.source.A_adjoint(y)
        if self.style == "adjoint":
            return self.source.adjoint(y)
        return self._autograd_adjoint(y)

    def _autograd_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^H y = grad_x Re<A x, y> at x = 0 (exact for a linear A; differentiable in y)."""
        dtype = complex_dtype(real_dtype(y)) if self.complex_images else real_dtype(y)
        with torch.enable_grad():
            x = torch.zeros((y.shape[0], *self._image_shape), dtype=dtype, device=y.device, requires_grad=True)
            out = self._forward(x)
            (grad,) = torch.autograd.grad(out, x, grad_outputs=y.to(out.dtype), create_graph=y.requires_grad)
        return grad

    def pseudo_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """deepinv's ``A_dagger`` if the source has one, else the scaled adjoint."""
        if self.style == "deepinv" and callable(getattr(self.source, "A_dagger", None)):
            return self._image_output(self.source.A_dagger(self.check_measurement(y)))
        return super().pseudo_inverse(y)

    def extra_repr(self) -> str:
        return (f"source={type(self.source).__name__}, adjoint={self.style if self._explicit_adjoint is None else 'given'}"
                f", image_shape={self._image_shape}, measurement_shape={self._measurement_shape}")

"""Argument checks shared by the operators: tensor layout, domain, finiteness, 0/1 masks.

They only look at metadata (shape, dtype, device) except :func:`check_finite` and
:func:`check_binary_mask`, which read values and so synchronise with the device.
"""
from __future__ import annotations

import math
import numbers

import torch

from scoremed.errors import InputError

Shape = tuple[int | None, ...]

#: a tensor's number domain as the checks name it
DOMAINS = ("real", "complex", "real or complex")


def describe(t: torch.Tensor) -> str:
    """``'float32 (2, 1, 32, 32)'``: dtype and shape of ``t`` for error messages."""
    return f"{str(t.dtype).removeprefix('torch.')} {tuple(t.shape)}"


def format_shape(shape: Shape) -> str:
    """``(B, C, 64, 64)`` for the per-sample shape ``(None, 64, 64)``."""
    return "(" + ", ".join(["B"] + ["C" if s is None else str(s) for s in shape]) + ")"


def in_domain(t: torch.Tensor, domain: str) -> bool:
    """True if ``t``'s dtype belongs to ``domain`` (one of :data:`DOMAINS`)."""
    return {"real": t.is_floating_point(), "complex": t.is_complex(),
            "real or complex": t.is_floating_point() or t.is_complex()}[domain]


def check_tensor(t: object, name: str, shape: Shape, domain: str, what: str) -> torch.Tensor:
    """Raise InputError unless ``t`` is a (B, *shape) tensor of the given domain.

    ``domain`` is one of :data:`DOMAINS`; ``None`` entries of ``shape`` match any size.
    """
    expected = f"{domain} {what} of shape {format_shape(shape)}"
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor ({expected}), got {type(t).__name__}")
    shape_ok = t.ndim == len(shape) + 1 and all(e is None or e == s for e, s in zip(shape, t.shape[1:]))
    if not (in_domain(t, domain) and shape_ok):
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


def check_rho(rho: object, like: torch.Tensor, name: str = "rho") -> float | torch.Tensor:
    """A proximal weight: a number >= 0 as a float, or a real tensor (values not read: no host
    synchronisation) in the real precision of ``like``; InputError otherwise."""
    if isinstance(rho, torch.Tensor):
        if not rho.is_floating_point():
            raise InputError(f"{name}: expected a real floating-point tensor (e.g. one weight per image (B, 1, 1, 1)), "
                             f"got {describe(rho)}")
        return rho.to(real_dtype(like))
    if isinstance(rho, bool) or not isinstance(rho, numbers.Real) or not (math.isfinite(rho) and rho >= 0):
        raise InputError(f"{name}: expected a finite number >= 0 or a real tensor, got {rho!r}")
    return float(rho)


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


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex128 for float64 (or complex128), complex64 otherwise."""
    return torch.complex128 if dtype in (torch.float64, torch.complex128) else torch.complex64


def merge_shapes(a: Shape, b: Shape, name: str) -> Shape:
    """The per-sample shape that satisfies both ``a`` and ``b`` (None = any size); InputError if none does."""
    if len(a) != len(b) or any(x is not None and y is not None and x != y for x, y in zip(a, b)):
        raise InputError(f"{name}: expected matching shapes, got {format_shape(a)} and {format_shape(b)}")
    return tuple(x if x is not None else y for x, y in zip(a, b))

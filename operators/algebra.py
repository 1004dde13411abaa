"""Operator algebra (sigpy ``linop`` style): composition, adjoint, scalar multiples, sums, stacks.

Usually reached through the operators themselves: ``A @ B`` (:class:`Compose`), ``A.H``
(:class:`Adjoint`), ``c * A`` (:class:`Scaled`), ``A + B`` / ``A - B`` (:class:`Sum`);
``Stack([A, B], dim=1)`` concatenates measurements. Each result is again a
:class:`LinearOperator` whose adjoint is built from the parts' adjoints, so
(A B)^H = B^H A^H holds by construction.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scoremed.errors import InputError

from .base import LinearOperator, Shape, is_scalar
from .checks import merge_shapes

__all__ = ["Compose", "Adjoint", "Scaled", "Sum", "Stack"]

PASSTHROUGH = "real or complex"  # a measurement domain that follows the input's


def _check_operators(ops: Sequence[object], name: str) -> list[LinearOperator]:
    ops = list(ops)
    if not ops or not all(isinstance(op, LinearOperator) for op in ops):
        got = [type(op).__name__ for op in ops]
        raise InputError(f"{name}: expected scoremed operators (wrap others with scoremed.operators.as_operator), "
                         f"got {got}")
    return ops


def _common_measurement_domain(ops: Sequence[LinearOperator], name: str) -> str:
    domains = {op.measurement_domain for op in ops} - {PASSTHROUGH}
    if len(domains) > 1:
        raise InputError(f"{name}: expected operators with the same measurement domain, got {sorted(domains)}")
    return domains.pop() if domains else PASSTHROUGH


def _common_image_domain(ops: Sequence[LinearOperator], name: str) -> str:
    domains = {op.image_domain for op in ops} - {PASSTHROUGH}
    if len(domains) > 1:
        raise InputError(f"{name}: expected operators that accept the same images, got {sorted(domains)}")
    return domains.pop() if domains else PASSTHROUGH


class _Combination(LinearOperator):
    """Common parts of the combined operators: flags derived from ``self.ops``."""

    ops: nn.ModuleList

    @property
    def complex_images(self) -> bool:  # type: ignore[override]
        return self.image_domain != "real"

    @property
    def complex_measurement(self) -> bool:  # type: ignore[override]
        return self.measurement_domain == "complex"

    @property
    def needs_full_precision(self) -> bool:  # type: ignore[override]
        return any(op.needs_full_precision for op in self.ops)

    @property
    def measurement_name(self) -> str:  # type: ignore[override]
        return self.ops[0].measurement_name


def _merge_all(shapes: Sequence[Shape], name: str) -> Shape:
    merged = shapes[0]
    for shape in shapes[1:]:
        merged = merge_shapes(merged, shape, name)
    return merged


class _SameImage(_Combination):
    """Combinations whose parts all act on the same image (sums, stacks)."""

    image_shape = property(lambda self: _merge_all([op.image_shape for op in self.ops], "operators"))
    image_domain = property(lambda self: _common_image_domain(self.ops, "operators"))
    measurement_domain = property(lambda self: _common_measurement_domain(self.ops, "operators"))

    def _set_parts(self, ops: list[LinearOperator]) -> None:
        self.ops = nn.ModuleList(ops)
        self.image_domain, self.measurement_domain, self.image_shape, self.measurement_shape  # noqa: B018 (checks)


class Compose(_Combination):
    """A_1 A_2 ... A_k (``A_1 @ A_2 @ ... @ A_k``): A_k is applied first.

    Shape constraints travel through shape-preserving parts (masks, FFTs, pointwise
    products), so ``Mask(m) @ FFT()`` takes images of the mask's size.
    """

    def __init__(self, *ops: LinearOperator):
        super().__init__()
        flat = [part for op in _check_operators(ops, "operators")
                for part in (op.ops if isinstance(op, Compose) else [op])]
        self.ops = nn.ModuleList(flat)
        inner_to_outer = flat[::-1]
        for inner, outer in zip(inner_to_outer, inner_to_outer[1:]):
            merge_shapes(inner.measurement_shape, outer.image_shape,
                         f"operators ({type(outer).__name__} @ {type(inner).__name__})")
            if inner.measurement_domain == "complex" and outer.image_domain == "real":
                raise InputError(f"operators: {type(inner).__name__} gives complex measurements but "
                                 f"{type(outer).__name__} takes real images")
        self.image_shape, self.measurement_shape  # noqa: B018 (checks that the constraints agree)

    @property
    def image_shape(self) -> Shape:
        shape = self.ops[-1].image_shape
        for i in range(len(self.ops) - 2, -1, -1):
            if not all(inner.preserves_shape for inner in self.ops[i + 1:]):
                break
            shape = merge_shapes(shape, self.ops[i].image_shape, "operators")
        return shape

    @property
    def measurement_shape(self) -> Shape:
        shape = self.ops[0].measurement_shape
        for i in range(1, len(self.ops)):
            if not all(outer.preserves_shape for outer in self.ops[:i]):
                break
            shape = merge_shapes(shape, self.ops[i].measurement_shape, "operators")
        return shape

    @property
    def preserves_shape(self) -> bool:  # type: ignore[override]
        return all(op.preserves_shape for op in self.ops)

    @property
    def image_domain(self) -> str:
        return self.ops[-1].image_domain

    @property
    def measurement_domain(self) -> str:
        domain = PASSTHROUGH
        for op in reversed(self.ops):
            if op.measurement_domain != PASSTHROUGH:
                domain = op.measurement_domain
        return domain

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in reversed(self.ops):
            x = op(x)
        return x

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            y = op.adjoint(y)
        return y


class Adjoint(LinearOperator):
    """A^H as an operator (``A.H``): forward is ``A.adjoint``, adjoint is ``A.forward``."""

    def __init__(self, op: LinearOperator):
        super().__init__()
        self.op = _check_operators([op], "operator")[0]
        self.__dict__["_adjoint_op"] = op  # A.H.H is A (plain attribute: no module cycle)

    image_shape = property(lambda self: self.op.measurement_shape)
    measurement_shape = property(lambda self: self.op.image_shape)
    image_domain = property(lambda self: self.op.measurement_domain)
    measurement_domain = property(lambda self: self.op.image_domain)
    complex_images = property(lambda self: self.image_domain != "real")
    complex_measurement = property(lambda self: self.measurement_domain == "complex")
    needs_full_precision = property(lambda self: self.op.needs_full_precision)
    preserves_shape = property(lambda self: self.op.preserves_shape)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op(y)

    def norm(self, image_shape: Shape | None = None, **options) -> float:
        """||A^H|| = ||A||."""
        return self.op.norm(**options) if image_shape is None else super().norm(image_shape, **options)


class Scaled(LinearOperator):
    """c A for a real or complex scalar c (complex only for complex measurements)."""

    def __init__(self, op: LinearOperator, scale: object):
        super().__init__()
        self.op = _check_operators([op], "operator")[0]
        if not is_scalar(scale):
            raise InputError(f"scale: expected a number, got {type(scale).__name__}")
        scale = scale.item() if isinstance(scale, torch.Tensor) else scale
        if isinstance(scale, complex) and op.measurement_domain == "real":
            raise InputError(f"scale: expected a real number for an operator with real measurements, got {scale}")
        self.scale = complex(scale) if isinstance(scale, complex) else float(scale)

    image_shape = property(lambda self: self.op.image_shape)
    measurement_shape = property(lambda self: self.op.measurement_shape)
    image_domain = property(lambda self: self.op.image_domain)
    measurement_domain = property(lambda self: self.op.measurement_domain)
    complex_images = property(lambda self: self.op.complex_images)
    complex_measurement = property(lambda self: self.op.complex_measurement)
    needs_full_precision = property(lambda self: self.op.needs_full_precision)
    preserves_shape = property(lambda self: self.op.preserves_shape)
    measurement_name = property(lambda self: self.op.measurement_name)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.op(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        scale = self.scale.conjugate() if isinstance(self.scale, complex) else self.scale
        return scale * self.op.adjoint(y)

    def norm(self, image_shape: Shape | None = None, **options) -> float:
        """|c| ||A||."""
        return abs(self.scale) * self.op.norm(image_shape, **options)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class Sum(_SameImage):
    """A_1 + A_2 + ...: every part takes the same images and gives measurements of one shape."""

    def __init__(self, *ops: LinearOperator):
        super().__init__()
        self._set_parts([part for op in _check_operators(ops, "operators")
                         for part in (op.ops if isinstance(op, Sum) else [op])])

    measurement_shape = property(lambda self: _merge_all([op.measurement_shape for op in self.ops], "operators"))
    preserves_shape = property(lambda self: all(op.preserves_shape for op in self.ops))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(op(x) for op in self.ops)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return sum(op.adjoint(y) for op in self.ops)


class Stack(_SameImage):
    """[A_1; A_2; ...]: the parts' measurements concatenated along ``dim`` (1 = channels).

    Every part takes the same images; their measurements must agree in every other
    dimension. Parts whose size along ``dim`` is free share the rest of y equally.
    """

    def __init__(self, ops: Sequence[LinearOperator], dim: int = 1):
        super().__init__()
        ops = _check_operators(ops, "ops")
        ndim = len(ops[0].measurement_shape)
        if not (isinstance(dim, int) and 1 <= dim <= ndim):
            raise InputError(f"dim: expected an int in [1, {ndim}] (dim 0 is the batch), got {dim!r}")
        self.dim = dim
        self._set_parts(ops)

    @property
    def measurement_shape(self) -> Shape:
        k, image = self.dim - 1, self.image_shape
        shapes = [merge_shapes(op.measurement_shape, image, "operators") if op.preserves_shape
                  else op.measurement_shape for op in self.ops]
        shape = _merge_all([s[:k] + (None,) + s[k + 1:] for s in shapes], "operators")
        sizes = [s[k] for s in shapes]
        return shape[:k] + (None if None in sizes else sum(sizes),) + shape[k + 1:]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([op(x) for op in self.ops], dim=self.dim)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        sizes = [op.measurement_shape[self.dim - 1] for op in self.ops]
        free = sizes.count(None)
        if free:
            rest = y.shape[self.dim] - sum(s for s in sizes if s is not None)
            if rest < 0 or rest % free:
                raise InputError(f"y: expected a size along dim {self.dim} that the {free} part(s) of free size "
                                 f"can share, got {tuple(y.shape)}")
            sizes = [rest // free if s is None else s for s in sizes]
        parts = torch.split(y, sizes, dim=self.dim)
        return sum(op.adjoint(part) for op, part in zip(self.ops, parts))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

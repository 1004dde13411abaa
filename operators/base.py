"""The operator protocol: ``LinearOperator`` and ``DecomposableOperator`` (A = P(Λ) T).

Operators are ``torch.nn.Module`` s with batch-first tensors. Masks, angles and maps are
buffers, so ``.to(device)`` / ``.to(dtype)`` move them. ``forward`` / ``adjoint`` only
check shapes, dtypes and devices around a private ``_forward`` / ``_adjoint`` (no host
synchronisation: they run inside sampling loops, whose divergence watch catches NaN/Inf
instead); ``check_measurement`` and ``pseudo_inverse`` also reject non-finite values.

Operators compose like sigpy linops: ``A @ B``, ``A.H``, ``2 * A``, ``A + B``, ``A - B``
(Compose, Adjoint, Scaled, Sum, Stack, below), and ``A.norm()`` is computed once per image
shape by power iteration and cached.

Capabilities are explicit, with defaults, so callers never probe with ``getattr``:
``pseudo_inverse(y)`` (default: the scaled adjoint), ``support(x)`` (the field of view; default:
the whole grid), ``prox_l2(v, y, rho)`` where ``has_prox_l2`` (a closed-form data step; default:
none, solve the normal equations by CG), ``complex_images``, ``decomposable`` (A = P(Λ) T).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from scoremed.errors import InputError

from .checks import Shape, check_finite, check_rho, check_tensor, complex_dtype, describe, merge_shapes

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
    adjoint for Re<., .>; outputs follow the input's precision. They may override the
    capabilities ``pseudo_inverse``, ``support`` and ``prox_l2`` (with ``has_prox_l2 = True``).
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
    #: True for A = P(Λ) T (:class:`DecomposableOperator`: ``transform``, ``inverse_transform``, ``mask``, ``embed``)
    decomposable: bool = False
    #: True if :meth:`prox_l2` is implemented (exact, closed form); else callers solve the normal equations (CG)
    has_prox_l2: bool = False

    # --- shapes and domains -------------------------------------------------------------
    @property
    def image_shape(self) -> Shape:
        """Image shape without batch, (C, H, W); None for a size the operator does not fix (every operator has one)."""
        raise NotImplementedError(f"{type(self).__name__} does not define image_shape")

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

    # --- capabilities -------------------------------------------------------------------
    def support(self, x: torch.Tensor) -> torch.Tensor:
        """Images x (B, *image_shape) set to 0 outside the operator's field of view.

        Outside it the device does not look (A support(x) = A x) and the object is taken to be
        empty, so reconstructions are zeroed there. Default: the identity (the whole grid is
        seen); CT with ``circle=True``: the disc the rays cross.
        """
        return self.check_image(x)

    def prox_l2(self, v: torch.Tensor, y: torch.Tensor, rho: float | torch.Tensor) -> torch.Tensor:
        """The proximal point of the data term 1/2 ||A x - y||^2 at v (B, *image_shape):

            argmin_x 1/2 ||A x - y||^2 + rho/2 ||x - v||^2,   i.e.   (A^H A + rho I) x = A^H y + rho v,

        over x in v's domain (real v: real x, the normal operator Re(A^H A)). ``rho`` >= 0 is a
        number or a real tensor broadcasting against v (one per image: (B, 1, 1, 1)); rho = 0 gives
        the limit, the least-squares solution nearest v. Exact and closed-form, only where
        ``has_prox_l2`` (masks, Grayscale, single-coil MRI); NotImplementedError otherwise: solve
        the normal equations instead (conjugate gradients need only ``forward`` and ``adjoint``).
        """
        raise NotImplementedError(f"{type(self).__name__} has no closed-form prox_l2 (has_prox_l2 is False); "
                                  "solve (A^H A + rho I) x = A^H y + rho v by conjugate gradients")

    def _projection_prox(self, v: torch.Tensor, y: torch.Tensor, rho: float | torch.Tensor,
                         gain: float) -> torch.Tensor:
        """``prox_l2`` for A^H A = gain * P, P an orthogonal projection keeping real images real (masks:
        gain 1, Grayscale: 1/3): x = v + A^H (y - A v) / (gain + rho)."""
        v, y = self.check_image(v, "v"), self._check_measurement_layout(y)
        step = self.adjoint(y - self(v))
        step = step.real if step.is_complex() and not v.is_complex() else step
        return v + step / (gain + check_rho(rho, v))

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
            cached = self.__dict__["_adjoint_op"] = Adjoint(self)
        return cached

    def __matmul__(self, other: object) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Compose(self, other)

    def __mul__(self, other: object) -> LinearOperator:
        if not is_scalar(other):
            return NotImplemented
        return Scaled(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> LinearOperator:
        return self * (1 / other) if is_scalar(other) else NotImplemented

    def __neg__(self) -> LinearOperator:
        return self * -1

    def __add__(self, other: object) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
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
    decomposable = True

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """T x; accepts real image-space tensors (e.g. noise)."""
        raise NotImplementedError

    def inverse_transform(self, k: torch.Tensor) -> torch.Tensor:
        """T^{-1} k."""
        raise NotImplementedError

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        """The measurement y in the transform domain, zeros where unmeasured."""
        raise NotImplementedError


# --- operator algebra (sigpy ``linop`` style) -------------------------------------------------------------
# ``A @ B`` (Compose), ``A.H`` (Adjoint), ``c * A`` (Scaled), ``A + B`` / ``A - B`` (Sum); ``Stack([A, B], dim=1)``
# concatenates measurements. Each result is again a LinearOperator whose adjoint is built from the parts'
# adjoints, so (A B)^H = B^H A^H holds by construction.

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

    def support(self, x: torch.Tensor) -> torch.Tensor:
        """The field of view of A_k, the part applied first."""
        return self.ops[-1].support(self.check_image(x))

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

    def support(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.support(x)

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

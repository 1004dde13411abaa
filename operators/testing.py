"""``check_operator``: the property battery every operator (shipped or yours) should pass.

    >>> from scoremed.operators.testing import check_operator
    >>> figures = check_operator(my_blur, image_shape=(1, 64, 64))   # AssertionError if a property fails

Properties, each measured as a relative gap (0 for an exact operator):

- ``linearity``: ||A(a x1 + b x2) - a A x1 - b A x2|| / (|a| ||A x1|| + |b| ||A x2||);
- ``adjointness``: |<A x, y> - <x, A^H y>| / (||A x|| ||y||) (real inner products);
- ``autograd``: ||grad_x Re<A x, y> - A^H y|| / ||A^H y|| (DPS differentiates ``forward``);
- ``batch``: a batch of two against the two images one at a time;
- ``norm``: ``A.norm()`` must bound ||A x|| / ||x|| (gap = how far the largest ratio seen exceeds it);
- ``dtype``: float32 in -> float32 out (complex64 for complex measurements), float64 likewise,
  and the float32 result within float32 precision of the float64 one (gap = their difference);
- ``device``: a copy moved with ``.to(device)`` gives the same result (``device``: default
  CUDA if available; on a CPU-only machine the move to CPU is checked);
- ``support``: ||A support(x) - A x|| / ||A x|| (A does not look outside its field of view);
- ``prox`` (only operators with ``has_prox_l2``): the optimality of ``prox_l2(v, y, rho)`` at
  rho = 0 and 0.7, ||Re A^H (A x - y) + rho (x - v)|| / (||A^H y|| + ||rho v||).
"""
from __future__ import annotations

import copy

import torch

from .adapters import as_operator
from .base import LinearOperator
from .checks import complex_dtype, describe

__all__ = ["check_operator", "TOLERANCES"]

#: maximum relative gap per property at float64 (float32 checks use 1e-3 where it matters)
TOLERANCES = {"linearity": 1e-6, "adjointness": 1e-6, "autograd": 1e-6, "batch": 1e-6, "norm": 1e-3,
              "dtype": 1e-3, "device": 1e-4, "support": 1e-6, "prox": 1e-6}


def _random(shape, dtype: torch.dtype, seed: int, device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(shape, generator=g, dtype=torch.float64)
    if dtype.is_complex:
        real = torch.complex(real, torch.randn(shape, generator=g, dtype=torch.float64))
    return real.to(device=device, dtype=dtype)


def _inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.conj() * b).real.sum()


def _rel(num: torch.Tensor, den: torch.Tensor | float) -> float:
    den = float(den)
    return float(num) / den if den > 0 else float(num)


def _expect(name: str, gap: float, tol: float, detail: str) -> None:
    if not gap <= tol:  # also catches NaN
        raise AssertionError(f"{name}: {detail} = {gap:.3e} > tolerance {tol:.1e}")


def check_operator(op: object, image_shape: tuple[int, ...] | None = None, *, dtypes=(torch.float32, torch.float64),
                   device=None, seed: int = 0, tolerances: dict[str, float] | None = None) -> dict[str, float | str]:
    """Run the battery on ``op`` (anything :func:`scoremed.operators.as_operator` accepts) and return the gaps.

    Args:
        op: the operator; wrapped with ``as_operator(op, image_shape)`` first.
        image_shape: per-image shape (C, H, W); default the operator's own, free sizes = 8.
        dtypes: real image dtypes to check; the first is used for ``device`` and the
            float64 one (if listed) for the tight properties.
        device: where to move a copy for the device check (default: cuda if available, else cpu).
        tolerances: overrides of :data:`TOLERANCES`.

    Returns:
        {property: gap} for every property above (``prox`` only if the operator has one), plus
        ``norm_value`` and ``device_checked``.

    Raises:
        AssertionError: naming the first property that fails and its measured gap.
    """
    tol = {**TOLERANCES, **(tolerances or {})}
    op = as_operator(op, image_shape)
    shape = tuple(8 if s is None else s for s in (op.image_shape if image_shape is None else image_shape))
    home = op.device or torch.device("cpu")
    exact = torch.float64 if torch.float64 in dtypes else dtypes[0]
    loose = 1.0 if exact == torch.float64 else 1e3  # float32-only checks get float32 tolerances
    figures: dict[str, float | str] = {}

    def image(dtype, seed_offset, batch=2):
        real = dtype if not op.complex_images else complex_dtype(dtype)
        return _random((batch, *shape), real, seed + seed_offset, home)

    figures["dtype"] = _dtype_gap(op, image, dtypes, tol["dtype"])  # first: it reports operators stuck in one dtype
    work = copy.deepcopy(op).to(exact)
    x1, x2 = image(exact, 1), image(exact, 2)
    ax1, ax2 = work(x1), work(x2)
    a, b = (0.7 - 0.2j, -1.3 + 0.4j) if op.complex_images else (0.7, -1.3)
    gap = _rel(torch.linalg.vector_norm(work(a * x1 + b * x2) - a * ax1 - b * ax2),
               abs(a) * torch.linalg.vector_norm(ax1) + abs(b) * torch.linalg.vector_norm(ax2))
    _expect("linearity", gap, tol["linearity"] * loose, "||A(a x1 + b x2) - a A x1 - b A x2|| / (|a| ||A x1|| + |b| ||A x2||)")
    figures["linearity"] = gap

    y = _random(tuple(ax1.shape), ax1.dtype, seed + 3, home)
    aty = work.adjoint(y)
    if tuple(aty.shape) != tuple(x1.shape):
        raise AssertionError(f"adjointness: A^H y has shape {tuple(aty.shape)}, expected the image shape {tuple(x1.shape)}")
    gap = _rel((_inner(ax1, y) - _inner(x1, aty)).abs(), torch.linalg.vector_norm(ax1) * torch.linalg.vector_norm(y))
    _expect("adjointness", gap, tol["adjointness"] * loose, "|<A x, y> - <x, A^H y>| / (||A x|| ||y||)")
    figures["adjointness"] = gap

    figures["autograd"] = _autograd_gap(work, x1, y, aty, tol["autograd"] * loose)

    single = torch.cat([work(x1[i:i + 1]) for i in range(2)])
    gap = _rel(torch.linalg.vector_norm(single - ax1), torch.linalg.vector_norm(ax1))
    _expect("batch", gap, tol["batch"] * loose, "||[A x_1; A x_2] - A [x_1; x_2]|| / ||A x||")
    figures["batch"] = gap

    figures["norm_value"] = norm = work.norm(shape)
    probes = [x1[:1], x2[:1], aty[:1], work.adjoint(work(aty[:1]))]
    ratio = max(_rel(torch.linalg.vector_norm(work(v)), torch.linalg.vector_norm(v)) for v in probes)
    gap = max(0.0, _rel(ratio - norm, norm)) if norm > 0 else ratio
    _expect("norm", gap, tol["norm"], f"(max ||A x|| / ||x|| - A.norm()) / A.norm() with A.norm() = {norm:.6g}")
    figures["norm"] = gap

    gap = _rel(torch.linalg.vector_norm(work(work.support(x1)) - ax1), torch.linalg.vector_norm(ax1))
    _expect("support", gap, tol["support"] * loose, "||A support(x) - A x|| / ||A x||")
    figures["support"] = gap

    if op.has_prox_l2:
        figures["prox"] = _prox_gap(work, x1, y, aty, tol["prox"] * loose)
    figures["device"], figures["device_checked"] = _device_gap(op, image(dtypes[0], 5), device, tol["device"])
    return figures


def _prox_gap(op: LinearOperator, v: torch.Tensor, y: torch.Tensor, aty: torch.Tensor, tol: float) -> float:
    """Optimality of prox_l2 for a batch of two at rho = 0 (least squares) and 0.7."""
    rho = torch.tensor([0.0, 0.7], dtype=torch.float64, device=v.device).reshape(-1, *[1] * (v.ndim - 1))
    x = op.prox_l2(v, y, rho)
    if x.shape != v.shape or x.dtype != v.dtype:
        raise AssertionError(f"prox: prox_l2 returned {describe(x)} for v {describe(v)}")
    residual = op.adjoint(op(x) - y)
    residual = residual.real if residual.is_complex() and not v.is_complex() else residual
    gap = _rel(torch.linalg.vector_norm(residual + rho * (x - v)),
               torch.linalg.vector_norm(aty) + torch.linalg.vector_norm(rho * v))
    _expect("prox", gap, tol, "||Re A^H (A x - y) + rho (x - v)|| / (||A^H y|| + ||rho v||) at rho = 0, 0.7")
    return gap


def _autograd_gap(op: LinearOperator, x: torch.Tensor, y: torch.Tensor, aty: torch.Tensor, tol: float) -> float:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = op(x)
        if not out.requires_grad:
            raise AssertionError("autograd: forward is not differentiable (its output does not require grad); "
                                 "DPS and gradient steps need a differentiable forward")
        (grad,) = torch.autograd.grad(_inner(out, y), x)
    gap = _rel(torch.linalg.vector_norm(grad - aty), torch.linalg.vector_norm(aty))
    _expect("autograd", gap, tol, "||grad_x Re<A x, y> - A^H y|| / ||A^H y||")
    return gap


def _dtype_gap(op: LinearOperator, image, dtypes, tol: float) -> float:
    outputs = {}
    for dtype in dtypes:
        work = copy.deepcopy(op).to(dtype)
        x = image(dtype, 4)
        try:
            y = work(x)
            back = work.adjoint(y)
        except Exception as err:  # noqa: BLE001 (reported as the failing property)
            raise AssertionError(f"dtype: the operator moved with .to({dtype}) failed on {describe(x)} "
                                 f"({type(err).__name__}: {err}); restrict the check with dtypes=(...)") from err
        want = complex_dtype(dtype) if op.complex_measurement else dtype
        if y.dtype != want or back.dtype != x.dtype:
            raise AssertionError(f"dtype: {describe(x)} gave a measurement {describe(y)} (expected {want}) and an "
                                 f"adjoint {describe(back)} (expected {x.dtype})")
        outputs[dtype] = y
    if len(outputs) < 2:
        return 0.0
    low, high = (outputs[pick(outputs, key=lambda d: torch.finfo(d).bits)] for pick in (min, max))
    gap = _rel(torch.linalg.vector_norm(low.to(high.dtype) - high), torch.linalg.vector_norm(high))
    _expect("dtype", gap, tol, "||A_low x - A_high x|| / ||A_high x|| between the precisions")
    return gap


def _device_gap(op: LinearOperator, x: torch.Tensor, device, tol: float) -> tuple[float, str]:
    target = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    moved = copy.deepcopy(op).to(target)
    try:
        y = moved(x.to(target))
    except Exception as err:  # noqa: BLE001 (reported as the failing property)
        raise AssertionError(f"device: the operator moved with .to({target}) failed ({type(err).__name__}: {err})") \
            from err
    if y.device.type != target.type:
        raise AssertionError(f"device: the operator moved to {target} returned a measurement on {y.device}")
    ref = op(x)
    gap = _rel(torch.linalg.vector_norm(y.to(ref.device) - ref), torch.linalg.vector_norm(ref))
    _expect("device", gap, tol, f"||A x on {target} - A x on {x.device}|| / ||A x||")
    return gap, str(target)

"""Batched conjugate gradients on the device: a fixed number of iterations, no host synchronisation."""
from __future__ import annotations

from typing import Callable

import torch

from scoremed.utils import append_dims


def real_dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-example real inner product Re <u, v> over all but the batch dim; shape (B,).

    For complex tensors this is the inner product of the real vector space C^n = R^2n, so
    complex k-space and complex images are handled like real ones.
    """
    prod = torch.conj(u) * v if u.is_complex() else u * v
    return prod.real.flatten(1).sum(1) if prod.is_complex() else prod.flatten(1).sum(1)


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], rhs: torch.Tensor, x0: torch.Tensor,
                       iterations: int) -> torch.Tensor:
    """Approximately solve M x = rhs for a symmetric positive semi-definite M, started at x0.

    Args:
        apply: x (B, ...) -> M x, the same shape; M must be self-adjoint under :func:`real_dot`
            (e.g. Re(A^H A) on real images, or I + gamma A^H A).
        rhs, x0: (B, ...) right-hand side and starting point.
        iterations: CG iterations (fixed: no host read per iteration). An example whose
            residual norm is below sqrt(eps) times max(|rhs|, |first residual|) takes zero steps
            from then on.

    Started at x0, the iterates stay in x0 + Krylov(M, rhs - M x0); for M = A^H A with a
    consistent rhs = A^H y they converge to the least-squares solution nearest to x0.
    """
    x = x0
    r = rhs - apply(x)
    p = r
    rs = real_dot(r, r)
    # an example whose residual fell below sqrt(eps) of |rhs| (or of its first residual) stops moving
    # (a relative test on the device): past that, round-off directions in the null space of M get
    # near-zero curvature and a huge step
    floor = torch.maximum(rs, real_dot(rhs, rhs)) * torch.finfo(rs.dtype).eps
    for _ in range(int(iterations)):
        mp = apply(p)
        curvature = real_dot(p, mp)
        live = (rs > floor) & (curvature > 0)
        alpha = torch.where(live, rs / torch.where(live, curvature, torch.ones_like(curvature)), torch.zeros_like(rs))
        x = x + append_dims(alpha, x.ndim) * p
        r = r - append_dims(alpha, r.ndim) * mp
        rs_new = real_dot(r, r)
        beta = torch.where(live, rs_new / torch.where(live, rs, torch.ones_like(rs)), torch.zeros_like(rs))
        p = r + append_dims(beta, p.ndim) * p
        rs = rs_new
    return x

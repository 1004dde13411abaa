"""Time grids of a sampling run: functions returning tensors (the SDE itself is never mutated)."""
from __future__ import annotations

import torch

from scoremed.sde import SDE


def time_grid(sde: SDE, eps: float, device, t_start: float | None = None) -> torch.Tensor:
    """The ``sde.N`` decreasing times from T down to eps, cut at t_start when given; shape (N',)."""
    grid = torch.linspace(sde.T, eps, sde.N, device=device)
    return grid if t_start is None else grid[grid <= t_start + 1e-12]


def truncated(sde: SDE, steps: int, t_start: float) -> SDE:
    """A copy of ``sde`` whose uniform grid has ``steps`` points at or below ``t_start`` (a run that
    starts at t_start with ``steps`` steps, on the same grid spacing as a run from T)."""
    if t_start >= sde.T:
        return sde.with_steps(steps)
    eps = sde.default_eps
    n = max(steps, 1 + round((steps - 1) * (sde.T - eps) / max(t_start - eps, 1e-12)))
    while len(time_grid(sde.with_steps(n), eps, "cpu", t_start)) < steps:
        n += 1
    return sde.with_steps(n)

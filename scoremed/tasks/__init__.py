"""Tasks: one module per task (mri, ct, inpaint, colorize), each with its operator factory, typed
options, default prior and classical baseline. The only part of scoremed that builds concrete
operators; adding a task is a new module here and one line in :data:`TASKS`.

    operator = make_operator("mri", (1, 320, 320), get_task("mri").options(accel=8))
    baseline = classical_reconstruction(y, operator)   # the strongest tuned baseline (tuned.py)
    for extra, params, label in own_row_baselines(operator):     # PnP-BM3D when bm3d is installed
        image = extra.run(y, operator, **params)
"""
from __future__ import annotations

import logging

import torch

from scoremed.errors import InputError
from scoremed.operators import LinearOperator
from scoremed.tasks import colorize, ct, inpaint, mri
from scoremed.tasks.base import Baseline, Task

log = logging.getLogger("scoremed")
#: every task by name
TASKS: dict[str, Task] = {task.name: task for task in (mri.TASK, ct.TASK, inpaint.TASK, colorize.TASK)}
#: the shipped prior used when none is given, by operator kind
DEFAULT_PRIORS: dict[str, str] = {kind: task.default_prior for task in TASKS.values() for kind in task.kinds}


def get_task(name: str, argument: str = "task") -> Task:
    """The task called ``name``."""
    if name not in TASKS:
        raise InputError(f"{argument}: expected one of {list(TASKS)}, got {name!r}")
    return TASKS[name]


def task_for(operator, argument: str = "operator") -> Task:
    """The task whose operators have ``operator.kind`` (a scoremed operator)."""
    if not isinstance(operator, LinearOperator):
        raise InputError(f"{argument}: expected a scoremed operator of a task (kinds {sorted(DEFAULT_PRIORS)}), "
                         f"got {type(operator).__name__}")
    for task in TASKS.values():
        if operator.kind in task.kinds:
            return task
    raise InputError(f"{argument}: no task for operator kind {operator.kind!r}; known: {sorted(DEFAULT_PRIORS)}")


def make_operator(task: str, image_shape, options=None):
    """The forward operator of ``task`` for images ``image_shape`` = (C, H, W)."""
    return get_task(task).make_operator(image_shape, options)


def image_size(operator) -> tuple[int, int] | None:
    """(H, W) of the operator's images where it fixes them (a (1, W) line mask: a square W x W), else None."""
    h, w = operator.image_shape[-2:]
    if w is None:
        return None
    return (h or w, w)


def classical_reconstruction(y: torch.Tensor, operator) -> torch.Tensor:
    """The strongest tuned classical baseline of the operator's task: images (B, C, H, W) on y's device."""
    baseline, params, _ = task_for(operator).strongest(operator, image_size(operator))
    return baseline.run(y, operator, **params)


def classical_name(operator) -> str:
    """What :func:`classical_reconstruction` runs for ``operator``, e.g. "TV, real x >= 0 (PDHG), tuned"."""
    return task_for(operator).strongest(operator, image_size(operator))[2]


#: (task, baseline) pairs whose missing optional package was noted already (one note per process)
_NOTED: set[tuple[str, str]] = set()


def own_row_baselines(operator) -> list[tuple[Baseline, dict, str]]:
    """(baseline, parameters, label) of the operator's task's baselines compared in rows of their own
    (PnP-BM3D), tuned where the tuned table has them; a baseline whose optional package is missing is
    skipped with a one-line note (once per process)."""
    task = task_for(operator)
    rows, missing = task.own_rows(operator, image_size(operator))
    for baseline in missing:
        if (task.name, baseline.name) not in _NOTED:
            _NOTED.add((task.name, baseline.name))
            log.info("%s: skipped, it needs the optional %s package (pip install 'scoremed[%s]')", baseline.label,
                     baseline.requires, baseline.requires)
    return rows


def default_prior_name(kind: str, channels: int | None = None) -> str | None:
    """The shipped prior for an operator kind and a measurement with ``channels`` channels (None if none)."""
    for task in TASKS.values():
        if kind in task.kinds:
            return task.prior_for(channels)
    return None


__all__ = ["Baseline", "Task", "TASKS", "DEFAULT_PRIORS", "get_task", "task_for", "make_operator", "classical_reconstruction",
           "classical_name", "own_row_baselines", "default_prior_name", "image_size"]

"""Tasks: one module per task (mri, ct, inpaint, colorize), each with its operator factory, typed
options, default prior and classical baseline. The only part of scoremed that builds concrete
operators; adding a task is a new module here and one line in :data:`TASKS`.

    operator = make_operator("mri", (1, 320, 320), get_task("mri").options(accel=8))
    baseline = classical_reconstruction(y, operator)
"""
from __future__ import annotations

import torch

from scoremed.errors import InputError
from scoremed.tasks import colorize, ct, inpaint, mri
from scoremed.tasks.base import Task

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
    """The task whose operators have ``operator.kind``."""
    kind = getattr(operator, "kind", "")
    for task in TASKS.values():
        if kind in task.kinds:
            return task
    raise InputError(f"{argument}: no task for operator kind {kind!r}; known: {sorted(DEFAULT_PRIORS)}")


def make_operator(task: str, image_shape, options=None):
    """The forward operator of ``task`` for images ``image_shape`` = (C, H, W)."""
    return get_task(task).make_operator(image_shape, options)


def classical_reconstruction(y: torch.Tensor, operator) -> torch.Tensor:
    """The classical baseline of the operator's task: images (B, C, H, W) on y's device."""
    return task_for(operator).classical(y, operator)


def classical_name(operator) -> str:
    """The name of the classical baseline for ``operator``."""
    return task_for(operator).classical_names[operator.kind]


def default_prior_name(kind: str, channels: int | None = None) -> str | None:
    """The shipped prior for an operator kind and a measurement with ``channels`` channels (None if none)."""
    for task in TASKS.values():
        if kind in task.kinds:
            return task.prior_for(channels)
    return None


__all__ = ["Task", "TASKS", "DEFAULT_PRIORS", "get_task", "task_for", "make_operator", "classical_reconstruction",
           "classical_name", "default_prior_name"]

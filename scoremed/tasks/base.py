"""What a task is: an operator factory with typed options, a default prior and a classical baseline."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from scoremed.errors import InputError, check_int


def option(default: Any, help: str) -> Any:
    """A field of a task's options dataclass with a one-line description (shown by ``--help``)."""
    return field(default=default, metadata={"help": help})


def check_choice(value: object, name: str, choices) -> str:
    """``value`` if it is one of ``choices``, else an InputError naming ``name``."""
    if value not in choices:
        raise InputError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def check_image_shape(image_shape: object, name: str = "image_shape") -> tuple[int, int, int]:
    """``image_shape`` as (C, H, W) positive ints."""
    if not isinstance(image_shape, (tuple, list, torch.Size)) or len(image_shape) != 3:
        raise InputError(f"{name}: expected (C, H, W), got {image_shape!r}")
    return tuple(check_int(v, name, 1) for v in image_shape)


@dataclass(frozen=True)
class Task:
    """One reconstruction task (``mri``, ``ct``, ``inpaint``, ``colorize``).

    ``build(image_shape (C, H, W), options)`` returns the forward operator for images of that
    shape; ``classical(y, operator)`` the classical reconstruction (B, C, H, W) on y's device;
    ``classical_names`` maps each operator ``kind`` the task produces or accepts to the
    baseline's name; ``default_prior`` is the shipped prior used when none is given
    (``prior_by_channels`` overrides it for measurements with that many channels).
    """
    name: str
    summary: str
    options: type
    build: Callable[[tuple[int, int, int], Any], Any]
    classical: Callable[[torch.Tensor, Any], torch.Tensor]
    classical_names: Mapping[str, str]
    default_prior: str
    prior_by_channels: Mapping[int, str] = field(default_factory=dict)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The operator kinds this task's baseline and default prior serve."""
        return tuple(self.classical_names)

    def make_options(self, **values: Any):
        """The task's options from keyword values (unknown names are an InputError)."""
        known = {f.name for f in dataclasses.fields(self.options)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"options: task '{self.name}' has no option(s) {unknown}; known: {sorted(known)}")
        return self.options(**values)

    def make_operator(self, image_shape, options=None):
        """The forward operator for images ``image_shape`` = (C, H, W) (default options when None)."""
        options = self.options() if options is None else options
        if not isinstance(options, self.options):
            raise InputError(f"options: expected {self.options.__module__}.{self.options.__qualname__} for task "
                             f"'{self.name}', got {type(options).__name__}")
        return self.build(check_image_shape(image_shape), options)

    def prior_for(self, channels: int | None = None) -> str:
        """The shipped prior for measurements with ``channels`` channels (None: the task's default)."""
        return self.prior_by_channels.get(channels, self.default_prior)

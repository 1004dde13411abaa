"""What a task is: an operator factory with typed options, a default prior and classical baselines."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

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


def always(operator) -> bool:
    """A baseline that applies to every operator of its task."""
    return True


@dataclass(frozen=True)
class Baseline:
    """One classical reconstruction of a task.

    ``run(y, operator, callback=None, **params)`` returns images (B, C, H, W) on y's device;
    an iterative one calls ``callback(iteration, images)`` after every iteration, counting in
    its ``steps`` parameter. ``untuned`` are its parameters before tuning, ``grid`` the values
    ``scoremed tune`` searches (empty: nothing to tune); ``applies(operator)`` says whether it
    can reconstruct from that operator (e.g. a geometry a library supports). ``requires`` names an
    optional package it needs (without it, it is skipped with a note). ``own_row``: compared in a row
    of its own and never chosen as the strongest baseline (the "classical" row and warm start), for a
    costly one or one that needs an optional package.
    """
    name: str
    label: str
    run: Callable[..., torch.Tensor]
    untuned: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    steps: str | None = None
    applies: Callable[[Any], bool] = always
    requires: str | None = None
    own_row: bool = False

    def available(self) -> bool:
        """Whether the optional package it needs (if any) is installed."""
        if self.requires is None:
            return True
        import importlib.util

        return importlib.util.find_spec(self.requires) is not None

    def __call__(self, y: torch.Tensor, operator, **params: Any) -> torch.Tensor:
        """The reconstruction with the untuned parameters updated by ``params``."""
        return self.run(y, operator, **{**self.untuned, **params})


@dataclass(frozen=True)
class Task:
    """One reconstruction task (``mri``, ``ct``, ``inpaint``, ``colorize``).

    ``build(image_shape (C, H, W), options)`` returns the forward operator for images of that
    shape; ``baselines`` are its classical reconstructions (the first is the default until
    tuning has chosen the strongest); ``kinds`` the operator kinds the task produces or
    accepts; ``default_prior`` is the shipped prior used when none is given
    (``prior_by_channels`` overrides it for measurements with that many channels).
    ``medical``: medical images (written as NIfTI, else PNG); ``measured_data``: the kinds of
    measured data files it reconstructs from ("kspace", "sinogram").
    """
    name: str
    summary: str
    options: type
    build: Callable[[tuple[int, int, int], Any], Any]
    baselines: tuple[Baseline, ...]
    kinds: tuple[str, ...]
    default_prior: str
    prior_by_channels: Mapping[int, str] = field(default_factory=dict)
    medical: bool = False
    measured_data: tuple[str, ...] = ()

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

    def baseline(self, name: str) -> Baseline:
        """The baseline called ``name``."""
        for baseline in self.baselines:
            if baseline.name == name:
                return baseline
        raise InputError(f"baseline: task '{self.name}' has baselines {[b.name for b in self.baselines]}, "
                         f"got {name!r}")

    def _scores(self, size: tuple[int, int] | None) -> Mapping[str, Any]:
        """The tuned table's baselines at the size nearest to ``size`` (empty before tuning or for None)."""
        from scoremed.tasks.tuned import entry_for

        return (entry_for(self.name, size) or {}).get("baselines", {}) if size is not None else {}

    def strongest(self, operator, size: tuple[int, int] | None) -> tuple[Baseline, dict[str, Any], str]:
        """(baseline, parameters, label) of the strongest baseline that applies to ``operator``, for
        images of ``size`` (H, W): the best tuned validation PSNR in the tuned table at the nearest
        size; before tuning (or for size None) the first one that applies, untuned. Baselines with a
        row of their own (``own_row``) are never chosen."""
        usable = [b for b in self.baselines if not b.own_row and b.applies(operator) and b.available()]
        if not usable:
            raise InputError(f"operator: no classical baseline of task '{self.name}' applies to "
                             f"{type(operator).__name__}")
        scores = self._scores(size)
        tuned = [b for b in usable if b.name in scores]
        if tuned:
            best = max(tuned, key=lambda b: scores[b.name]["psnr"])
            return best, {**best.untuned, **scores[best.name]["params"]}, f"{best.label}, tuned"
        first = usable[0]
        return first, dict(first.untuned), first.label + (", untuned" if first.grid else "")

    def own_rows(self, operator, size: tuple[int, int] | None) -> tuple[list[tuple[Baseline, dict[str, Any], str]],
                                                                        list[Baseline]]:
        """The baselines with a row of their own that apply to ``operator``: ([(baseline, parameters,
        label)] of those that can run, tuned at the size nearest to ``size`` when the table has them;
        [those whose optional package is missing])."""
        scores = self._scores(size)
        rows, missing = [], []
        for b in self.baselines:
            if not (b.own_row and b.applies(operator)):
                continue
            if not b.available():
                missing.append(b)
            elif b.name in scores:
                rows.append((b, {**b.untuned, **scores[b.name]["params"]}, f"{b.label}, tuned"))
            else:
                rows.append((b, dict(b.untuned), b.label + (", untuned" if b.grid else "")))
        return rows, missing

    def prior_for(self, channels: int | None = None) -> str:
        """The shipped prior for measurements with ``channels`` channels (None: the task's default)."""
        return self.prior_by_channels.get(channels, self.default_prior)

"""What every solver method shares: the base settings dataclass (sampler, schedule, start, speed), the
checked-field helpers its subclasses declare their own settings with, and the record a method's
``build`` returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from scoremed.networks import COMPILE_MODES, PRECISIONS
from scoremed.sampling.conditioning import Conditioning

#: where the reverse process starts: pure noise at T, or the direct (pseudo-inverse) or the tuned classical
#: reconstruction perturbed to t_start; "auto": "classical" where the operator's task has a classical
#: baseline, else "noise"
STARTS = ("noise", "direct", "classical", "auto")


def number(default: float | None, low: float | None = None, high: float | None = None, optional: bool = False):
    """A float setting in [low, high] (``optional``: None allowed)."""
    return field(default=default, metadata={"check": ("number", low, high, optional)})


def integer(default: int, low: int):
    """An int setting >= low."""
    return field(default=default, metadata={"check": ("integer", low)})


def choice(default: str, choices: tuple[str, ...], switch: tuple[str, str] | None = None):
    """A setting that is one of ``choices``; ``switch`` = (off, on): also given as False / True."""
    return field(default=default, metadata={"check": ("choice", choices, switch)})


def name(default: str):
    """A name looked up later (a predictor or corrector)."""
    return field(default=default, metadata={"check": ("name",)})


def flag(default: bool):
    """A true / false setting."""
    return field(default=default, metadata={"check": ("flag",)})


@dataclass
class SolveSettings:
    """Settings every method has: the sampler, its schedule, the start and the speed options."""

    method: str
    steps: int = integer(500, 1)
    predictor: str = name("reverse_diffusion")
    corrector: str = name("langevin")
    snr: float = number(0.16, 0.0)          #: Langevin signal-to-noise ratio
    n_corrector_steps: int = integer(1, 0)
    start: str = choice("noise", STARTS)    #: "noise" (x_T ~ p_T), "direct" / "classical" (that reconstruction
                                            #: perturbed to t_start) or "auto" (classical where the operator's
                                            #: task has one, else noise)
    t_start: float = field(default=1.0, metadata={"check": ("time",)})   #: start time; ignored for "noise"
    precision: str = choice("fp32", PRECISIONS)   #: network evaluations: fp32, bf16 (autocast), auto (bf16 on CUDA)
    channels_last: bool = flag(False)       #: channels-last network inputs and weights
    compile: str = choice("off", COMPILE_MODES, ("off", "default"))   #: torch.compile mode (True: "default")

    @property
    def start_label(self) -> str:
        """Where the reverse process starts, as calibrations and benchmark rows name it: "noise" or e.g.
        "classical@0.2"."""
        return "noise" if self.start == "noise" else f"{self.start}@{self.t_start:g}"

    @property
    def evaluations_per_step(self) -> int:
        """Score evaluations per predictor step: the predictor's plus the corrector's."""
        return 1 + (self.n_corrector_steps if self.corrector != "none" else 0)

    @property
    def label(self) -> str:
        """The sampler these settings run, for benchmark rows (steps apart): e.g. "consistency: reverse_diffusion
        + langevin (snr 0.16) from noise" or "diffpir: diffpir from classical@0.2"."""
        corrector = f" + {self.corrector} (snr {self.snr:g})" if self.corrector != "none" else ""
        return f"{self.method}: {self.predictor}{corrector} from {self.start_label}"


@dataclass
class Problem:
    """What a method builds its conditioning for: the SDE of the run's schedule, the operator, the batch
    of measurements y (B, ...) of model-space images (B, *image_shape) and the run's generator."""

    sde: Any
    operator: Any
    y: torch.Tensor
    image_shape: tuple[int, ...]
    generator: torch.Generator | None


@dataclass
class Plan:
    """A method's part of one run: the conditioning, extra keyword arguments of the predictor, and a check
    to run on the conditioning after the loop (raises, e.g. DPS's divergence guard)."""

    conditioning: Conditioning
    predictor_options: dict[str, Any] = field(default_factory=dict)
    after: Callable[[], None] | None = None


@dataclass(frozen=True)
class Method:
    """A registry entry: the method's settings dataclass and how to build its conditioning.

    ``predictors``: the predictors the method works with (None: any); ``evaluations`` counts the score
    evaluations of one reconstruction (default: steps x evaluations per step).
    """

    name: str
    settings: type[SolveSettings]
    build: Callable[[Any, Problem], Plan]
    summary: str
    predictors: tuple[str, ...] | None = None

    def evaluations(self, settings: SolveSettings) -> int:
        return settings.steps * settings.evaluations_per_step

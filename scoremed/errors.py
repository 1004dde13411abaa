"""The exceptions scoremed raises on purpose.

- :class:`InputError` (a ``ValueError``): bad input. Every public entry point — ``solve``,
  ``sample_posterior``, ``sample``, the operators, ``load_prior``, ``import_checkpoint``,
  the config loader, the image loaders and the command-line tools (exit code 2) — checks
  shapes, dtypes, devices, finite values and ranges of its arguments and of the files it
  reads, and raises this one type with a message naming the argument, the expected and
  the received value. Corrupt, truncated or pickle-based checkpoint files are bad input
  too; nothing is ever unpickled.
- :class:`SamplingDiverged` (a ``FloatingPointError``): the input was valid but the
  sampler produced NaN/Inf (e.g. a too large ``snr`` or ``zeta``, or a broken score
  network). It carries the first bad step number in ``step`` and is kept distinct from
  InputError because retrying with other settings can fix it, while fixing the input is
  what an InputError asks for. No partial result is returned.
- ``scoremed.training.TrainingDiverged`` (a ``RuntimeError``): the training loss became
  NaN/Inf; training stops without saving, so the last good checkpoint stays the latest.

Anything else escaping a public function is a bug.
"""
from __future__ import annotations

import math
import numbers

import torch


class InputError(ValueError):
    """Invalid argument, file or configuration.

    Messages name the argument, the expected and the received value. Subclasses
    ``ValueError`` so that generic handlers keep working.
    """


class MissingDependency(InputError, ImportError):
    """An optional package a feature needs is not installed; the message says which extra to install."""


class SamplingDiverged(FloatingPointError):
    """Sampling produced non-finite values; ``step`` is the first bad step (None if unknown)."""

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


# --- argument checks shared by the public entry points ----------------------------------
def _bounds(low, high) -> str:
    if high is None:
        return f">= {low}"
    return f"<= {high}" if low is None else f"in [{low}, {high}]"


def check_int(value: object, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int (bools and non-integral numbers are refused), within the bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name}: expected an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InputError(f"{name}: expected an integer {_bounds(minimum, maximum)}, got {value}")
    return value


def check_number(value: object, name: str, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a finite float within [low, high] (bools, strings and NaN/Inf are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise InputError(f"{name}: expected a finite number, got {value!r}")
    value = float(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{name}: expected a value {_bounds(low, high)}, got {value}")
    return value


def check_device(device: object, name: str = "device"):
    """None, or a ``torch.device`` that exists on this machine (cpu, cuda[:N], mps)."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"{name}: expected a torch device such as 'cpu', 'cuda' or 'cuda:0', got {device!r}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index is not None and dev.index >= count):
            raise InputError(f"{name}: {dev} requested but this machine has {count} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"{name}: mps requested but MPS is not available on this machine")
    elif dev.type != "cpu":
        raise InputError(f"{name}: expected cpu, cuda or mps, got {dev.type!r}")
    return dev


def resolve_device(device: object = None, name: str = "device") -> torch.device:
    """:func:`check_device`, with None or "auto" meaning CUDA when available, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(device, name)


def check_seed(seed: object, name: str = "seed") -> int | None:
    """None or an integer usable by ``torch.Generator.manual_seed``."""
    return None if seed is None else check_int(seed, name, 0, 2 ** 64 - 1)

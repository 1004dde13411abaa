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


class InputError(ValueError):
    """Invalid argument, file or configuration.

    Messages name the argument, the expected and the received value. Subclasses
    ``ValueError`` so that generic handlers keep working.
    """


class SamplingDiverged(FloatingPointError):
    """Sampling produced non-finite values; ``step`` is the first bad step (None if unknown)."""

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step

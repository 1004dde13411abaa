"""The one exception type that scoremed raises for bad input."""


class InputError(ValueError):
    """Invalid argument, file or configuration.

    Messages name the argument, the expected and the received value. Subclasses
    ``ValueError`` so that generic handlers keep working.
    """

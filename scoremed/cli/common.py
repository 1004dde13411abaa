"""Shared CLI plumbing: error reporting with exit code 2, logging, and flag names in error messages."""
from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import re
import sys
from typing import Callable, Iterator

from scoremed.errors import InputError

_LEADING_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?=[:\s(])")


def run_cli(main: Callable[..., int], argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run ``main``; bad input becomes one ``error: ...`` line and exit code 2, not a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if prog is not None and "prog" in inspect.signature(main).parameters:
            return main(argv, prog=prog)
        return main(argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def flags_in_errors(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Re-raise an InputError whose message starts with an option's name (``kspace_mask: ...``) with
    the command-line flag instead (``--kspace-mask: ...``): the library names its arguments, the
    command line names its flags."""
    flags = {a.dest: a.option_strings[-1] for a in parser._actions if a.option_strings}
    try:
        yield
    except InputError as exc:
        message = str(exc)
        match = _LEADING_NAME.match(message)
        if match is None or match.group(1) not in flags:
            raise
        raise InputError(flags[match.group(1)] + message[match.end():]) from None

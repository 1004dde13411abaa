"""Solver methods, one registry entry each: a settings dataclass, ``build(settings, problem) -> Plan``
(the conditioning and predictor options of one run) and ``evaluations(settings)``.

Adding a method = its module + one line in ``METHODS`` (or :func:`register` from outside the package);
``scoremed.solve`` never branches on a method name.
"""
from __future__ import annotations

from scoremed.errors import InputError
from scoremed.sampling.methods.base import STARTS, Method, Plan, Problem, SolveSettings
from scoremed.sampling.methods.consistency import CONSISTENCY, PROJECTION
from scoremed.sampling.methods.dds import DDS, DIFFPIR
from scoremed.sampling.methods.dps import DPS

METHODS: dict[str, Method] = {m.name: m for m in (CONSISTENCY, PROJECTION, DPS, DDS, DIFFPIR)}


def register(method: Method) -> Method:
    """Add ``method`` to the registry (e.g. a method of your own); refuses a name already taken."""
    if method.name in METHODS:
        raise InputError(f"method: {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get_method(name: object) -> Method:
    """The registry entry called ``name``; InputError naming the known ones otherwise."""
    if not isinstance(name, str) or name not in METHODS:
        raise InputError(f"method: expected one of {list(METHODS)}, got {name!r}")
    return METHODS[name]


def evaluations(settings: SolveSettings) -> int:
    """Score evaluations of one reconstruction with ``settings``."""
    return get_method(settings.method).evaluations(settings)


__all__ = ["METHODS", "STARTS", "Method", "Plan", "Problem", "SolveSettings", "evaluations", "get_method",
           "register"]

"""Settings of a reconstruction: the method's dataclass (:mod:`scoremed.sampling.methods`), filled from
its defaults, the prior's stored ``solve_defaults`` and explicit arguments (in that order), every value
checked against what the dataclass field declares."""
from __future__ import annotations

import dataclasses
from typing import Any

from scoremed.errors import InputError, check_int, check_number
from scoremed.prior import ScorePrior
from scoremed.sampling.methods import METHODS, SolveSettings, get_method


def default_method(prior: ScorePrior | None) -> str:
    """The method a prior recommends (``default_method`` in its metadata, chosen from measured
    quality-versus-NFE curves), else "consistency"."""
    metadata = prior.metadata if prior is not None and isinstance(prior.metadata, dict) else {}
    method = metadata.get("default_method", "consistency")
    if method not in METHODS:
        raise InputError(f"prior: '{prior.name}' recommends an unknown method {method!r}; expected one of "
                         f"{list(METHODS)}")
    return method


def _stored(prior: ScorePrior | None, method: str) -> dict[str, Any]:
    """The prior's stored settings of ``method`` ({} without a prior)."""
    if prior is None:
        return {}
    stored = prior.solve_defaults.get(method, {}) if isinstance(prior.solve_defaults, dict) else None
    if not isinstance(stored, dict):
        raise InputError(f"prior: '{prior.name}' has solve_defaults that are not a mapping of method -> settings "
                         f"({prior.solve_defaults!r})")
    return stored


def settings_for(method: str | None = None, prior: ScorePrior | None = None, **overrides: Any) -> SolveSettings:
    """The method's dataclass defaults, then the prior's stored defaults, then explicit (non-None) overrides.

    ``method`` None: the prior's :func:`default_method`. Every value is checked (type and range) whatever
    its source; an invalid stored default is reported as coming from the prior; a setting the method does
    not have is refused. Without a prior, t_start is checked against T = 1 (every shipped SDE's).
    """
    method = get_method(default_method(prior) if method is None else method).name
    stored = _stored(prior, method)
    given = {k: v for k, v in overrides.items() if v is not None}
    source = {key: f"{key} (stored in the solve_defaults of prior '{prior.name}')" for key in stored}
    return _checked(method, {**stored, **given}, prior, {**source, **{key: key for key in given}})


def with_overrides(settings: SolveSettings | None, prior: ScorePrior | None = None, **overrides: Any) -> SolveSettings:
    """``settings`` (a complete, explicit choice: the prior's stored defaults do not apply) with the
    non-None ``overrides``, checked again (t_start against the prior's SDE); ``settings`` None:
    :func:`settings_for` of the overrides' ``method`` (None: the prior's) with the rest."""
    if settings is None:
        return settings_for(overrides.pop("method", None), prior, **overrides)
    if not isinstance(settings, SolveSettings):
        raise InputError(f"settings: expected a SolveSettings (scoremed.settings_for(...)), got "
                         f"{type(settings).__name__}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("method", settings.method) != settings.method:
        raise InputError(f"method: {given['method']!r} given with settings of method {settings.method!r}; "
                         "pass one of them")
    given.pop("method", None)
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name != "method"}
    return _checked(settings.method, {**values, **given}, prior, {key: key for key in values})


def _checked(method: str, values: dict[str, Any], prior: ScorePrior | None, names: dict[str, str]) -> SolveSettings:
    """The method's settings dataclass from ``values``, each checked by its field's declaration; ``names``:
    how an error names each key (with its source)."""
    entry = get_method(method)
    declared = {f.name: f for f in dataclasses.fields(entry.settings) if f.name != "method"}
    for key in values:
        if key not in declared:
            raise InputError(f"{names.get(key, key)}: not a setting of method '{method}'; its settings are "
                             f"{sorted(declared)}")
    horizon = prior.sde.T if prior is not None else 1.0
    checked = {key: _check(value, declared[key].metadata.get("check", ("any",)), names.get(key, key), horizon)
               for key, value in values.items()}
    settings = entry.settings(method=method, **checked)
    if entry.predictors is not None and settings.predictor not in entry.predictors:
        raise InputError(f"{names.get('predictor', 'predictor')}: method '{method}' refines the Tweedie estimate "
                         f"inside the step; expected one of {list(entry.predictors)}, got {settings.predictor!r}")
    return settings


def _check(value: Any, declaration: tuple, name: str, horizon: float) -> Any:
    """``value`` checked by a field declaration of :mod:`scoremed.sampling.methods.base`."""
    kind = declaration[0]
    if kind == "integer":
        return check_int(value, name, declaration[1])
    if kind == "number":
        _, low, high, optional = declaration
        return None if optional and value is None else check_number(value, name, low, high)
    if kind == "time":
        return check_number(value, name, 1e-3 * horizon, horizon)
    if kind == "flag":
        if not isinstance(value, bool):
            raise InputError(f"{name}: expected true or false, got {value!r}")
        return value
    if kind == "name":
        if not isinstance(value, str):
            raise InputError(f"{name}: expected a name, got {value!r}")
        return value
    if kind == "choice":
        switch = declaration[2]
        if switch is not None and isinstance(value, bool):
            value = switch[value]
        if value not in declaration[1]:
            raise InputError(f"{name}: expected one of {list(declaration[1])}, got {value!r}")
        return value
    return value   # a field declared without a check (e.g. a method of your own)

"""``consistency`` (Song et al. 2022: transform-domain consistency with the perturbed measurement) and
``projection`` (the same step with the clean measurement a(t) y), in the PC loop."""
from __future__ import annotations

from dataclasses import dataclass

from scoremed.sampling.conditioning import ConsistencyStep
from scoremed.sampling.methods.base import Method, Plan, Problem, SolveSettings, number


@dataclass
class ConsistencySettings(SolveSettings):
    """Transform-domain consistency with the perturbed measurement (Song et al. 2022)."""

    lam: float = number(1.0, 0.0, 1.0)     #: consistency weight in [0, 1]


@dataclass
class ProjectionSettings(SolveSettings):
    """Consistency with the clean measurement a(t) y (no perturbation)."""

    lam: float = number(1.0, 0.0, 1.0)


def _build(settings: ConsistencySettings | ProjectionSettings, problem: Problem) -> Plan:
    return Plan(ConsistencyStep(problem.sde, problem.operator, problem.y, lam=settings.lam,
                                generator=problem.generator, perturb=settings.method == "consistency"))


CONSISTENCY = Method("consistency", ConsistencySettings, _build,
                     "transform-domain consistency with the perturbed measurement (Song et al. 2022)")
PROJECTION = Method("projection", ProjectionSettings, _build, "hard consistency with the clean measurement")

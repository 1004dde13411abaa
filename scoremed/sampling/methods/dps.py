"""``dps``: diffusion posterior sampling (Chung et al. 2023), gradient guidance through the Tweedie
estimate, normalised step; a run whose final estimate fits y worse than its first one raises
:class:`~scoremed.errors.SamplingDiverged` naming the step."""
from __future__ import annotations

from dataclasses import dataclass

from scoremed.errors import SamplingDiverged
from scoremed.sampling.conditioning import DPSGuidance
from scoremed.sampling.methods.base import Method, Plan, Problem, SolveSettings, name, number


@dataclass
class DPSSettings(SolveSettings):
    """Diffusion posterior sampling: gradient guidance through the Tweedie estimate."""

    corrector: str = name("none")
    snr: float = number(0.0, 0.0)
    zeta: float = number(2.0, 0.0)         #: step of the normalised DPS update (Chung et al. 2023), scaled by the
                                           #: noise each step removes (scoremed.sampling.conditioning.DPSScore)
    guard: float = number(10.0, 1.0)       #: an estimate with |y - A x0_hat| > guard |y| takes the unguided step


def _build(settings: DPSSettings, problem: Problem) -> Plan:
    norm = problem.operator.norm(problem.image_shape, device=problem.y.device)
    guidance = DPSGuidance(problem.sde, problem.operator, problem.y, zeta=settings.zeta,
                           scale=max(float(norm), 1e-12), guard=settings.guard)
    return Plan(guidance, after=lambda: _raise_if_guard_tripped(guidance, settings))


def _raise_if_guard_tripped(guidance: DPSGuidance, settings: DPSSettings) -> None:
    """SamplingDiverged naming the step from which the estimate fitted y worse than at the start."""
    call = guidance.guided.diverged_at()
    if call is None:
        return
    step = call // settings.evaluations_per_step
    raise SamplingDiverged(f"dps diverged: from step {step} of {settings.steps} on, the estimate fits the measurement "
                           f"worse than at the first step (|y - A x0_hat| grew; zeta = {settings.zeta:g}); lower zeta "
                           f"(e.g. {settings.zeta / 3:.3g}) or use method='dds'", step=step)


DPS = Method("dps", DPSSettings, _build, "gradient guidance through the Tweedie estimate (Chung et al. 2023)")

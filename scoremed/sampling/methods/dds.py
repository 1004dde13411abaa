"""``dds`` (Chung, Lee & Ye 2024: DDIM steps with a few conjugate-gradient iterations of data consistency
on the Tweedie estimate) and its peer ``diffpir`` (Zhu et al. 2023: the exact proximal point of the
data term on the estimate, then a step with the noise re-estimated from it); same network and loop."""
from __future__ import annotations

from dataclasses import dataclass

from scoremed.sampling.conditioning import DDSStep, ProximalStep
from scoremed.sampling.methods.base import Method, Plan, Problem, SolveSettings, integer, name, number

#: predictors that step through the Tweedie estimate (the ones these methods can refine)
DENOISING_PREDICTORS = ("ddim", "dpm2m", "diffpir")


@dataclass
class DDSSettings(SolveSettings):
    """DDIM steps with conjugate-gradient data consistency on the Tweedie estimate."""

    steps: int = integer(50, 1)
    predictor: str = name("ddim")
    corrector: str = name("none")
    eta: float = number(0.85, 0.0, 1.0)    #: DDIM stochasticity in [0, 1]
    cg_iterations: int = integer(5, 1)     #: CG iterations per step
    gamma: float | None = number(None, 0.0, optional=True)   #: None: noiseless A^H A x = A^H y; else
                                                             #: (I + gamma A^H A) x = x0 + gamma A^H y


@dataclass
class DiffPIRSettings(SolveSettings):
    """DiffPIR: the exact proximal point of the data term on the Tweedie estimate, then a step with the
    noise re-estimated from it."""

    steps: int = integer(50, 1)
    predictor: str = name("diffpir")
    corrector: str = name("none")
    eta: float = number(1.0, 0.0, 1.0)      #: DiffPIR's zeta: share of fresh noise in each step, in [0, 1]
    cg_iterations: int = integer(20, 1)     #: CG iterations of the proximal solve (enough to converge)
    prox_lambda: float = number(7.0, 1e-6)  #: DiffPIR's lambda: weight of the estimate against the data
    sigma_y: float = number(0.0, 0.0)       #: assumed noise std of y (model units); 0: noiseless, exact data fit


def _build_dds(settings: DDSSettings, problem: Problem) -> Plan:
    return Plan(DDSStep(problem.operator, problem.y, settings.cg_iterations, settings.gamma), {"eta": settings.eta})


def _build_diffpir(settings: DiffPIRSettings, problem: Problem) -> Plan:
    return Plan(ProximalStep(problem.sde, problem.operator, problem.y, settings.cg_iterations, settings.prox_lambda,
                             settings.sigma_y), {"eta": settings.eta})


DDS = Method("dds", DDSSettings, _build_dds, "DDIM steps with CG data consistency on the Tweedie estimate "
             "(Chung et al. 2024)", DENOISING_PREDICTORS)
DIFFPIR = Method("diffpir", DiffPIRSettings, _build_diffpir, "exact proximal data step on the Tweedie estimate "
                 "(Zhu et al. 2023)", DENOISING_PREDICTORS)

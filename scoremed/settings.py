"""Settings of a reconstruction: one dataclass per method, filled from generic defaults, the prior's
stored ``solve_defaults`` and explicit arguments (in that order), every value checked."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from scoremed.errors import InputError, check_int, check_number
from scoremed.networks import COMPILE_MODES, PRECISIONS
from scoremed.prior import ScorePrior

#: where the reverse process starts: pure noise at T, or the direct (pseudo-inverse) or the tuned classical
#: reconstruction perturbed to t_start; "auto": "classical" where the operator's task has a classical
#: baseline, else "noise"
STARTS = ("noise", "direct", "classical", "auto")
#: predictors that step through the Tweedie estimate (the ones ``dds`` and ``diffpir`` can refine)
DENOISING_PREDICTORS = ("ddim", "dpm2m", "diffpir")


@dataclass
class SolveSettings:
    """Settings every method has: the sampler, its schedule and the speed options."""

    method: str
    steps: int = 500
    predictor: str = "reverse_diffusion"
    corrector: str = "langevin"
    snr: float = 0.16             #: Langevin signal-to-noise ratio
    n_corrector_steps: int = 1
    start: str = "noise"          #: "noise" (x_T ~ p_T), "direct" / "classical" (that reconstruction perturbed to
                                  #: t_start) or "auto" (classical where the operator's task has one, else noise)
    t_start: float = 1.0          #: start time of start="direct" / "classical"; ignored for "noise"
    precision: str = "fp32"       #: network evaluations: "fp32", "bf16" (autocast) or "auto" (bf16 on CUDA)
    channels_last: bool = False   #: channels-last network inputs and weights
    compile: str = "off"          #: torch.compile mode: off, default, reduce-overhead (CUDA graphs), max-autotune

    @property
    def start_label(self) -> str:
        """Where the reverse process starts, as calibrations record it: "noise" or e.g. "classical@0.2"."""
        return "noise" if self.start == "noise" else f"{self.start}@{self.t_start:g}"

    @property
    def evaluations(self) -> int:
        """Score evaluations per reconstruction."""
        corrector_evals = self.n_corrector_steps if self.corrector != "none" else 0
        return self.steps * (1 + corrector_evals)


@dataclass
class ConsistencySettings(SolveSettings):
    """Transform-domain consistency with the perturbed measurement (Song et al. 2022)."""

    lam: float = 1.0              #: consistency weight in [0, 1]


@dataclass
class ProjectionSettings(SolveSettings):
    """Consistency with the clean measurement a(t) y (no perturbation)."""

    lam: float = 1.0


@dataclass
class DPSSettings(SolveSettings):
    """Diffusion posterior sampling: gradient guidance through the Tweedie estimate. A run whose final
    estimate fits y worse than its first one raises SamplingDiverged naming the step."""

    corrector: str = "none"
    snr: float = 0.0
    zeta: float = 0.5             #: step of the normalised DPS update (Chung et al. 2023), per ||A||
    guard: float = 10.0           #: an estimate with |y - A x0_hat| > guard |y| takes the unguided step


@dataclass
class DDSSettings(SolveSettings):
    """DDIM steps with conjugate-gradient data consistency on the Tweedie estimate (Chung et al. 2024)."""

    steps: int = 50
    predictor: str = "ddim"
    corrector: str = "none"
    eta: float = 0.85             #: DDIM stochasticity in [0, 1]
    cg_iterations: int = 5        #: CG iterations per step
    gamma: float | None = None    #: None: noiseless A^H A x = A^H y; else (I + gamma A^H A) x = x0 + gamma A^H y


@dataclass
class DiffPIRSettings(SolveSettings):
    """DiffPIR (Zhu et al. 2023): the exact proximal point of the data term on the Tweedie estimate, then
    a step with the noise re-estimated from it (the peer method of ``dds``, same network and loop)."""

    steps: int = 50
    predictor: str = "diffpir"
    corrector: str = "none"
    eta: float = 1.0              #: DiffPIR's zeta: share of fresh noise in each step, in [0, 1]
    cg_iterations: int = 20       #: CG iterations of the proximal solve (enough to converge)
    prox_lambda: float = 7.0      #: DiffPIR's lambda: weight of the estimate against the data
    sigma_y: float = 0.0          #: assumed noise std of y (model units); 0: noiseless, exact data fit


SETTINGS: dict[str, type[SolveSettings]] = {"consistency": ConsistencySettings, "projection": ProjectionSettings,
                                            "dps": DPSSettings, "dds": DDSSettings, "diffpir": DiffPIRSettings}
METHODS = tuple(SETTINGS)

#: per-field checks: (kind, low, high)
_NUMBERS = {"snr": (0.0, None), "t_start": (None, None), "lam": (0.0, 1.0), "zeta": (0.0, None),
            "guard": (1.0, None), "eta": (0.0, 1.0), "gamma": (0.0, None), "prox_lambda": (1e-6, None),
            "sigma_y": (0.0, None)}
_INTS = {"steps": 1, "n_corrector_steps": 0, "cg_iterations": 1}


def default_method(prior: ScorePrior) -> str:
    """The method a prior recommends (``default_method`` in its metadata, chosen from measured
    quality-versus-NFE curves), else "consistency"."""
    method = prior.metadata.get("default_method", "consistency") if isinstance(prior.metadata, dict) else "consistency"
    if method not in SETTINGS:
        raise InputError(f"prior: '{prior.name}' recommends an unknown method {method!r}; expected one of {list(METHODS)}")
    return method


def settings_for(prior: ScorePrior, method: str | None, **overrides: Any) -> SolveSettings:
    """The method's dataclass defaults, then the prior's stored defaults, then explicit (non-None) overrides.

    ``method`` None: the prior's :func:`default_method`.

    Every value is checked (type and range) whatever its source; an invalid stored default is
    reported as coming from the prior; a setting the method does not have is refused.
    """
    method = default_method(prior) if method is None else method
    if not isinstance(method, str) or method not in SETTINGS:
        raise InputError(f"method: expected one of {list(METHODS)}, got {method!r}")
    cls = SETTINGS[method]
    stored = prior.solve_defaults.get(method, {}) if isinstance(prior.solve_defaults, dict) else None
    if not isinstance(stored, dict):
        raise InputError(f"prior: '{prior.name}' has solve_defaults that are not a mapping of method -> settings "
                         f"({prior.solve_defaults!r})")
    given = {k: v for k, v in overrides.items() if v is not None}
    known = {f.name for f in fields(cls)} - {"method"}
    for key in (*stored, *given):
        if key not in known:
            source = "" if key in given else f" (stored in the solve_defaults of prior '{prior.name}')"
            raise InputError(f"{key}{source}: not a setting of method '{method}'; its settings are {sorted(known)}")
    values = {**stored, **given}

    def name(key: str) -> str:
        return key if key in given else f"{key} (stored in the solve_defaults of prior '{prior.name}')"

    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key in _INTS:
            checked[key] = check_int(value, name(key), _INTS[key])
        elif key == "t_start":
            checked[key] = check_number(value, name(key), 1e-3 * prior.sde.T, prior.sde.T)
        elif key in _NUMBERS:
            checked[key] = check_number(value, name(key), *_NUMBERS[key])
        elif key in ("predictor", "corrector"):
            if not isinstance(value, str):
                raise InputError(f"{name(key)}: expected a name, got {value!r}")
            checked[key] = value
        elif key == "channels_last":
            if not isinstance(value, bool):
                raise InputError(f"{name(key)}: expected true or false, got {value!r}")
            checked[key] = value
        else:   # start, precision, compile
            if key == "compile" and isinstance(value, bool):
                value = "default" if value else "off"
            allowed = {"start": STARTS, "precision": PRECISIONS, "compile": COMPILE_MODES}[key]
            if value not in allowed:
                raise InputError(f"{name(key)}: expected one of {list(allowed)}, got {value!r}")
            checked[key] = value
    settings = cls(method=method, **checked)
    if method in ("dds", "diffpir") and settings.predictor not in DENOISING_PREDICTORS:
        raise InputError(f"{name('predictor')}: method '{method}' refines the Tweedie estimate inside the step; expected "
                         f"one of {list(DENOISING_PREDICTORS)}, got {settings.predictor!r}")
    return settings

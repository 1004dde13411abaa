"""The solver-method registry: a method added from outside the package (its settings dataclass, its
build and one registration) is checked, counted and solved with like the shipped ones; explicit
settings are used as given."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import scoremed
from scoremed.errors import InputError
from scoremed.sampling import Conditioning, project
from scoremed.sampling.methods import METHODS, Method, Plan, SolveSettings, evaluations, get_method, register
from scoremed.sampling.methods.base import integer, name, number
from scoremed.settings import settings_for, with_overrides
from gaussian_cases import gaussian, left_half, mc_mean_error, posterior_case


class ProjectedEstimate(Conditioning):
    """The Tweedie estimate pulled by ``weight`` onto the measurement (exact data fit for weight 1)."""

    refines = True

    def __init__(self, operator, y, weight):
        self.operator, self.y, self.weight = operator, y, weight

    def refine(self, x0, t):
        return project(x0, self.y, self.operator, self.weight)


@dataclass
class ProjectedSettings(SolveSettings):
    steps: int = integer(40, 1)
    predictor: str = name("ddim")
    corrector: str = name("none")
    weight: float = number(1.0, 0.0, 1.0)


def _build(settings, problem):
    return Plan(ProjectedEstimate(problem.operator, problem.y, settings.weight), {"eta": 0.0})


@pytest.fixture
def toy_method():
    method = register(Method("projected-estimate", ProjectedSettings, _build, "Tweedie estimate projected on y",
                             ("ddim",)))
    yield method
    del METHODS[method.name]


def test_a_registered_method_solves_to_the_closed_form_posterior_mean(toy_method):
    """Projecting the Tweedie estimate on the measured pixels inside deterministic DDIM steps is exact data
    consistency for inpainting: the sample mean meets the closed-form posterior mean."""
    h, mean, cov, x, operator, y, post_mean, post_cov = posterior_case(16, left_half)
    prior = scoremed.gaussian_prior(scoremed.VESDE(), mean, cov, (1, h, h))
    n = 400
    samples = scoremed.sample_posterior(y, operator, n=n, prior=prior, method="projected-estimate", steps=200, seed=0,
                                        progress=False)
    error = float((samples.reshape(n, -1).double().mean(0) - post_mean).norm()) / float((mean - post_mean).norm())
    assert error <= 0.03 + 3 * mc_mean_error(post_cov, n) / float((mean - post_mean).norm()), error
    # a weight of 0 leaves the estimate alone: the samples then ignore the measurement
    free = scoremed.sample_posterior(y, operator, n=n, prior=prior, method="projected-estimate", steps=50, weight=0.0,
                                     seed=0, progress=False)
    assert float((free.reshape(n, -1).double().mean(0) - mean).norm()) < 3 * mc_mean_error(cov, n)


def test_a_registered_method_is_checked_and_counted_like_the_shipped_ones(toy_method):
    settings = settings_for("projected-estimate", steps=30)
    assert isinstance(settings, ProjectedSettings) and evaluations(settings) == 30
    assert get_method("projected-estimate") is toy_method
    with pytest.raises(InputError, match="weight"):
        settings_for("projected-estimate", weight=2.0)
    with pytest.raises(InputError, match="expected one of \\['ddim'\\]"):
        settings_for("projected-estimate", predictor="reverse_diffusion")
    with pytest.raises(InputError, match="already registered"):
        register(toy_method)


def test_unknown_methods_are_refused_naming_the_registered_ones():
    with pytest.raises(InputError, match="method: expected one of .*'diffpir'.*got 'projected-estimate'"):
        settings_for("projected-estimate")


def test_evaluations_count_the_corrector():
    assert evaluations(settings_for("consistency", steps=100)) == 200
    assert evaluations(settings_for("consistency", steps=100, corrector="none")) == 100
    assert evaluations(settings_for("dds", steps=50)) == 50


def test_explicit_settings_are_used_as_given_and_overrides_go_on_top():
    """settings= replaces the prior's stored defaults (steps 7 stored, 3 given); keyword overrides change
    only what they name; a method given beside settings of another method is refused."""
    h, mean, cov = gaussian(16)
    sde = scoremed.VESDE()
    stored = scoremed.ScorePrior(sde, scoremed.gaussian_prior(sde, mean, cov, (1, h, h)).score, (1, h, h),
                                 solve_defaults={"dds": {"steps": 7, "cg_iterations": 2}})
    operator = left_half(h)
    y = operator(mean.float().reshape(1, 1, h, h))
    run = {"n": 4, "prior": stored, "seed": 0, "progress": False}
    given = scoremed.sample_posterior(y, operator, settings=settings_for("dds", steps=3), **run)
    spelled = scoremed.sample_posterior(y, operator, method="dds", steps=3, cg_iterations=5, **run)
    from_prior = scoremed.sample_posterior(y, operator, method="dds", **run)
    torch.testing.assert_close(given, spelled)
    assert not torch.allclose(given, from_prior)
    assert with_overrides(settings_for("dds", steps=3), stored, eta=0.5) == settings_for("dds", steps=3, eta=0.5)
    with pytest.raises(InputError, match="method: 'dps' given with settings of method 'dds'"):
        scoremed.sample_posterior(y, operator, settings=settings_for("dds"), method="dps", **run)
    with pytest.raises(InputError, match="t_start"):
        with_overrides(settings_for("dds"), stored, t_start=5.0)

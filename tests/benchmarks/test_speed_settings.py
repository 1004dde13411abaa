"""The speed benchmark runs what its rows say: every sampler's settings resolve to the method its overrides
name (the prior's own default when they name none), and the row label is built from those settings."""
from __future__ import annotations

import scoremed
from scoremed.benchmarks.speed import BASELINE, DEFAULT, SAMPLERS, mri_operator
from scoremed.settings import default_method


def test_every_sampler_row_is_labelled_by_the_settings_it_runs():
    prior = scoremed.load_prior("mri-brain")
    operator = mri_operator((1, 64, 64))
    for sampler in SAMPLERS:
        settings = sampler.settings(prior, operator, 7)
        assert settings.method == sampler.overrides.get("method", default_method(prior))
        assert settings.steps == 7 and settings.start != "auto"
        assert settings.label.startswith(f"{settings.method}: {settings.predictor}")
        assert settings.label.endswith(f"from {settings.start_label}")
    assert BASELINE.settings(prior, operator, 1000).label == \
        "consistency: reverse_diffusion + langevin (snr 0.16) from noise"
    stored = prior.solve_defaults[default_method(prior)]
    assert DEFAULT.settings(prior, operator, 50).t_start == stored.get("t_start", 1.0)

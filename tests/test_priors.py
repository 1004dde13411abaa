"""A shipped prior's facts come from its JSON, and the code that writes tuned values into that JSON keeps
every other key."""
import json
import shutil

import pytest

from scoremed.benchmarks.tuning import classical_setting, store_defaults
from scoremed.errors import InputError
from scoremed.priors import SHIPPED_DIR, shipped_prior, shipped_prior_names, shipped_priors
from scoremed.tasks import get_task


def test_every_shipped_prior_names_its_tuning_task():
    priors = shipped_priors()
    assert [p.name for p in priors] == shipped_prior_names() and len(priors) >= 3
    assert all(isinstance(p.options, get_task(p.task).options) and p.label for p in priors)
    mri = shipped_prior("mri-brain")
    assert (mri.task, mri.options.accel, mri.label, mri.real_images) == ("mri", 4, "mri-4x", "mr")
    assert shipped_prior("natural").real_images is None
    assert classical_setting("ct").name == "ct-phantom"
    with pytest.raises(InputError, match="expected a shipped prior name"):
        shipped_prior("knee")
    with pytest.raises(InputError, match="tuned on the shipped priors' tasks"):
        classical_setting("colorize")


def test_storing_tuned_settings_keeps_the_other_keys(tmp_path):
    shutil.copy(SHIPPED_DIR / "natural.json", tmp_path / "natural.json")
    before = json.loads((tmp_path / "natural.json").read_text())
    store_defaults("natural", "dds", {"steps": 7}, [], tmp_path)
    after = json.loads((tmp_path / "natural.json").read_text())
    assert after["solve_defaults"]["dds"] == {"steps": 7} and after["tuning_task"] == before["tuning_task"]
    assert {k: v for k, v in after.items() if k not in ("solve_defaults", "tuning")} == \
        {k: v for k, v in before.items() if k not in ("solve_defaults", "tuning")}

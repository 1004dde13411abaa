"""The reconstruction grid: the data's own for resolution-free priors, the prior's for fixed-size ones,
``resize`` on request; sizes a prior or a task cannot take are refused naming the argument."""
from __future__ import annotations

import pytest
import torch

import scoremed
from scoremed.apps.grid import check_native_size, job_grid, min_size, task_operator
from scoremed.errors import InputError
from scoremed.tasks import get_task


def _prior(shape, patch=None):
    score = torch.nn.Identity()
    if patch:
        score.patch_size = patch
    return scoremed.ScorePrior(scoremed.VESDE(), score, shape, name="p")


def test_grid_of_fixed_size_and_resolution_free_priors():
    fixed, free = _prior((1, 16, 24)), _prior((1, None, None), patch=32)
    assert job_grid(fixed) == (16, 24) and job_grid(free) is None
    assert job_grid(free, 48) == (48, 48) and min_size(free) == 32 and min_size(fixed) == 1
    with pytest.raises(InputError, match=r"resize: prior 'p' is a fixed-size 16 x 24 prior"):
        job_grid(fixed, 32)
    with pytest.raises(InputError, match=r"resize: 20 is smaller than the 32 x 32 patches"):
        job_grid(free, 20)


def test_images_smaller_than_the_patches_are_refused():
    free = _prior((1, None, None), patch=32)
    assert check_native_size(free, (1, 1, 32, 40), "the image", "input") == (32, 40)
    with pytest.raises(InputError, match=r"^kspace: the k-space is 31 x 40 pixels, smaller than the 32 x 32 patches"):
        check_native_size(free, (31, 40), "the k-space", "kspace")


def test_sizes_the_task_cannot_take_name_the_input():
    ct = get_task("ct")
    assert task_operator(ct, (1, 24, 24), ct.options(views=6), "the image", "input").image_shape == (None, 24, 24)
    with pytest.raises(InputError, match=r"^input: the image \(24 x 30 pixels\) does not fit the ct task"):
        task_operator(ct, (1, 24, 30), ct.options(views=6), "the image", "input")
    with pytest.raises(InputError, match="^views"):   # an option error stays the option's
        task_operator(ct, (1, 24, 24), ct.options(views=0), "the image", "input")

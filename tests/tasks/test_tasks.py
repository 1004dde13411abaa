"""Tasks: every task's operator factory builds a valid operator at any image shape it supports,
options are checked by name, one default-prior table, and the classical baselines against closed
forms (linear ramps are biharmonic, a gray copy, full sampling, a well-posed CT); the iterative
solvers and the tuned table: tests/tasks/test_classical.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from scoremed.errors import InputError
from scoremed.operators import MultiCoilMRI, as_operator, cartesian_mask
from scoremed.operators.testing import check_operator
from scoremed.tasks import (DEFAULT_PRIORS, TASKS, classical_name, classical_reconstruction, ct, default_prior_name,
                            get_task, inpaint, make_operator, mri, task_for)

SHAPES = {"mri": (1, 12, 16), "ct": (1, 16, 16), "inpaint": (3, 10, 14), "colorize": (3, 10, 14)}


@pytest.mark.parametrize("name", list(TASKS))
def test_each_task_builds_a_valid_operator_of_its_kind_at_the_given_shape(name, device):
    operator = make_operator(name, SHAPES[name]).to(device)
    check_operator(operator, SHAPES[name], dtypes=(torch.float64,), device=device)
    assert task_for(operator) is TASKS[name] and operator.kind in TASKS[name].kinds
    assert DEFAULT_PRIORS[operator.kind] == TASKS[name].default_prior
    y = operator(torch.rand(2, *SHAPES[name], device=device))
    baseline = classical_reconstruction(y, operator)
    assert baseline.shape == (2, *SHAPES[name]) and baseline.device == y.device
    assert classical_name(operator).startswith(tuple(b.label for b in TASKS[name].baselines))


def test_mri_masks_follow_the_options():
    options = mri.Options(accel=4, center_fraction=0.25, mask="equispaced", seed=3)
    operator = make_operator("mri", (1, 16, 16), options)
    expected = cartesian_mask((16, 16), 4, center_fraction=0.25, kind="equispaced", seed=3)
    torch.testing.assert_close(operator.mask.expand(16, 16), expected.expand(16, 16).to(operator.mask.dtype))
    poisson = mri.make_mask((16, 16), mri.Options(accel=3, mask="poisson"))
    assert poisson.shape == (16, 16) and 0.2 < float(poisson.mean()) < 0.6


@pytest.mark.parametrize("build, match", [
    (lambda: make_operator("mri", (1, 8, 8), mri.Options(mask="spiral")), "^mask: expected one of"),
    (lambda: make_operator("inpaint", (1, 8, 8), inpaint.Options(mask_kind="blob")), "^mask_kind: expected one of"),
    (lambda: make_operator("ct", (1, 8, 10)), "^image_shape: CT needs square images"),
    (lambda: make_operator("ct", (1, 8, 8), mri.Options()), "^options: expected"),
    (lambda: make_operator("pet", (1, 8, 8)), "^task: expected one of"),
    (lambda: make_operator("mri", (8, 8)), r"^image_shape: expected \(C, H, W\)"),
    (lambda: get_task("mri").make_options(accel=2, views=3), r"^options: task 'mri' has no option\(s\) \['views'\]"),
])
def test_bad_options_are_input_errors_naming_the_option(build, match):
    with pytest.raises(InputError, match=match):
        build()


def test_tasks_state_what_they_write_and_which_measured_data_they_read():
    assert {name: (task.medical, task.measured_data) for name, task in TASKS.items()} == {
        "mri": (True, ("kspace",)), "ct": (True, ("sinogram",)), "inpaint": (False, ()), "colorize": (False, ())}


def test_task_for_needs_a_scoremed_operator_of_a_task():
    with pytest.raises(InputError, match="^operator: expected a scoremed operator of a task"):
        task_for(lambda x: 2 * x)
    with pytest.raises(InputError, match="^operator: no task for operator kind ''"):
        task_for(as_operator(lambda x: 2 * x, (1, 4, 4)))


def test_one_default_prior_table_with_inpainting_by_channels():
    assert DEFAULT_PRIORS == {"mri": "mri-brain", "mri-multicoil": "mri-brain", "ct": "ct-phantom",
                              "ct-fan": "ct-phantom", "inpaint": "natural", "colorize": "natural"}
    assert default_prior_name("inpaint", 1) == "mri-brain" and default_prior_name("inpaint", 3) == "natural"
    assert default_prior_name("mri-multicoil", 1) == "mri-brain" and default_prior_name("pet") is None


def test_biharmonic_inpainting_recovers_a_linear_ramp_exactly():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 12), torch.linspace(0, 1, 14), indexing="ij")
    truth = torch.stack([0.2 + 0.5 * xx, 0.8 - 0.3 * yy, 0.1 + 0.2 * xx + 0.3 * yy])[None]
    operator = make_operator("inpaint", (3, 12, 14), inpaint.Options(mask_kind="box"))
    torch.testing.assert_close(classical_reconstruction(operator(truth), operator), truth, atol=1e-5, rtol=0)


def test_colorization_baseline_is_the_gray_image_in_every_channel():
    x = torch.rand(2, 3, 6, 7)
    operator = make_operator("colorize", (3, 6, 7))
    out = classical_reconstruction(operator(x), operator)
    torch.testing.assert_close(out, x.mean(1, keepdim=True).expand(-1, 3, -1, -1), atol=1e-6, rtol=0)


def test_l1_wavelet_with_full_sampling_returns_the_image():
    x = torch.rand(1, 1, 16, 16)
    operator = mri.measured_operator(torch.ones(16, 16))
    out = mri.l1_wavelet(operator(x), operator, lamda=1e-6, max_iter=20)
    assert float((out - x).abs().max()) < 1e-3


def test_l1_wavelet_reconstructs_one_image_from_the_coils_of_multicoil_data():
    maps = torch.randn(3, 16, 16, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    operator = MultiCoilMRI(torch.ones(16, 16), maps / maps.abs().square().sum(0).sqrt())    # sum |S_c|^2 = 1
    x = torch.rand(2, 1, 16, 16)
    out = mri.l1_wavelet(operator(x), operator, lamda=1e-6, max_iter=20)
    assert operator.multicoil and out.shape == x.shape and float((out - x).abs().max()) < 1e-3


def test_sart_and_tv_with_every_view_recover_a_smooth_phantom():
    yy, xx = np.mgrid[-1:1:24j, -1:1:24j]
    truth = torch.from_numpy(np.exp(-4 * (xx ** 2 + yy ** 2)) * (xx ** 2 + yy ** 2 < 0.8)).float()[None, None]
    operator = ct.make_operator((1, 24, 24), ct.Options(views=180))
    inside = torch.from_numpy(xx ** 2 + yy ** 2 < 0.6)
    for out in (ct.sart(operator(truth), operator, iterations=3), ct.tv_pdhg(operator(truth), operator, 1e-5, 200)):
        assert float((out - truth)[0, 0][inside].abs().max()) < 0.05

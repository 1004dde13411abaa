"""Classical baselines: the TV solver against scikit-image's ROF denoiser and its own optimality,
the gradient's adjoint, every baseline's step callback against separate runs, and the tuned table
(nearest size, strongest applicable baseline, untuned before tuning)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scoremed.benchmarks.tuning import grid_trials
from scoremed.errors import InputError
from scoremed.operators import CT, Inpainting, sparse_view_angles
from scoremed.tasks import TASKS, classical_name, classical_reconstruction, ct, make_operator, mri, tuned
from scoremed.tasks.classical import gradient, gradient_adjoint, total_variation, tv_pdhg


def test_gradient_adjoint_is_the_adjoint_of_the_gradient():
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(2, 3, 7, 9, generator=g, dtype=torch.float64), torch.randn(2, 3, 2, 7, 9, generator=g,
                                                                                 dtype=torch.float64)
    assert float((gradient(x) * v).sum()) == pytest.approx(float((x * gradient_adjoint(v)).sum()), rel=1e-12)
    ramp = torch.arange(6.0).repeat(4, 1)[None, None]          # columns 0..5: TV = 5 per row plus the wrap 5
    assert float(total_variation(ramp)) == pytest.approx(4 * (5 * 1 + 5))


@pytest.fixture(scope="module")
def noisy_disc():
    """A 0.8 disc plus noise inside a zero border band (so periodic and Neumann boundaries agree)."""
    n = 24
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    y = (((yy - 11.5) ** 2 + (xx - 11.5) ** 2) < 49).double() * 0.8
    y[6:18, 6:18] += 0.1 * torch.randn(12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return y[None, None]


@pytest.mark.parametrize("weight", [0.02, 0.1])
def test_tv_with_an_identity_operator_is_skimage_rof_denoising(noisy_disc, weight):
    from skimage.restoration import denoise_tv_chambolle

    identity = Inpainting(torch.ones(24, 24, dtype=torch.float64))       # ||A|| = 1: weight is the ROF weight
    reference = denoise_tv_chambolle(noisy_disc[0, 0].numpy(), weight=weight, eps=1e-12, max_num_iter=20000)
    # equal primal and dual steps converge fastest for denoising (the default ratio suits sparse data)
    ours = tv_pdhg(noisy_disc, identity, weight, 2000, nonnegative=False, step_ratio=1.0)[0, 0].numpy()
    assert np.abs(ours - reference).max() < 5e-4
    doubled = tv_pdhg(noisy_disc, identity, 2 * weight, 2000, nonnegative=False, step_ratio=1.0)[0, 0].numpy()
    assert np.abs(doubled - reference).max() > 20 * np.abs(ours - reference).max()   # the test can tell weights


def test_tv_on_sparse_view_ct_reaches_its_minimum_and_batches_weights(device):
    """Optimality without a reference: no random perturbation of the solution lowers the objective, and
    per-image weights give what separate runs give."""
    yy, xx = np.mgrid[-1:1:16j, -1:1:16j]
    truth = torch.from_numpy((xx ** 2 + yy ** 2 < 0.5) * 0.6 + (np.abs(xx) < 0.2) * 0.3).float()[None, None]
    operator = CT(16, sparse_view_angles(8)).to(device)
    y = operator(truth.to(device))
    x = tv_pdhg(y.repeat(2, 1, 1, 1), operator, torch.tensor([1e-3, 1e-2]), 1500)
    scale = operator.norm()

    def objective(z, w):
        return float(0.5 * ((operator(z) - y) ** 2).sum() / scale ** 2 + w * total_variation(z).sum())

    best = objective(x[:1], 1e-3)
    g = torch.Generator(device=device).manual_seed(1)
    for _ in range(5):
        trial = (x[:1] + 1e-3 * torch.randn(x[:1].shape, generator=g, device=device)).clamp_min(0)
        assert objective(trial, 1e-3) > best - 1e-7
    torch.testing.assert_close(x[1:], tv_pdhg(y, operator, 1e-2, 1500), atol=1e-5, rtol=0)
    assert x.device == y.device and float(x.min()) >= 0


def test_tv_refuses_bad_weights_and_complex_images():
    operator = mri.measured_operator(torch.ones(8, 8))
    y = operator(torch.rand(2, 1, 8, 8))
    with pytest.raises(InputError, match="^weight: expected a number >= 0 or one per image"):
        tv_pdhg(y, operator, [1e-3, 1e-3, 1e-3])
    complex_op = type(operator)(torch.ones(8, 8), complex_images=True)
    with pytest.raises(InputError, match="^operator: tv_pdhg reconstructs real images"):
        tv_pdhg(complex_op(torch.rand(1, 1, 8, 8).to(torch.complex64)), complex_op)


@pytest.mark.parametrize("task, shape", [("mri", (1, 16, 16)), ("ct", (1, 16, 16))])
def test_each_baselines_step_callback_scores_what_a_separate_run_gives(task, shape):
    truth = torch.rand(1, *shape, generator=torch.Generator().manual_seed(0))
    operator = make_operator(task, shape)
    y = operator(truth)
    for baseline in (b for b in TASKS[task].baselines if b.steps):   # PnP-BM3D: one run per grid point
        steps = baseline.grid[baseline.steps][:2]
        point = {k: v[0] for k, v in baseline.grid.items() if k != baseline.steps}
        small = type(baseline)(**{**baseline.__dict__, "grid": {**{k: [v] for k, v in point.items()},
                                                                baseline.steps: steps}})
        np.random.seed(0)   # sigpy's power iteration starts from numpy's global generator
        trials = grid_trials(small, y, operator, truth)
        assert [t["params"][baseline.steps] for t in trials] == steps
        np.random.seed(0)
        alone = baseline(y, operator, **point, **{baseline.steps: steps[0]})
        from scoremed.apps.metrics import mean_metrics
        assert trials[0]["psnr"] == pytest.approx(mean_metrics(truth, alone)["psnr"], abs=2e-3)


def test_sart_needs_skimage_geometry_and_tv_serves_any_geometry():
    from scoremed.operators import FanBeamCT

    fan = FanBeamCT(16, sparse_view_angles(12), source_distance=40.0, detector_distance=20.0)
    y = fan(torch.rand(1, 1, 16, 16))
    assert not ct.skimage_geometry(fan) and ct.skimage_geometry(ct.make_operator((1, 16, 16), ct.Options()))
    with pytest.raises(InputError, match="^operator: SART"):
        ct.sart(y, fan)
    assert classical_name(fan).startswith("TV") and classical_reconstruction(y, fan).shape == (1, 1, 16, 16)


def _entry(scores: dict[str, float], size=(64, 64)) -> dict:
    return {"image_size": list(size), "strongest": max(scores, key=scores.get),
            "baselines": {name: {"params": {"iterations": 7}, "psnr": psnr, "ssim": 0.5} for name, psnr in scores.items()}}


def test_the_tuned_table_gives_the_nearest_size_and_the_strongest_baseline_that_applies(tmp_path, monkeypatch):
    path = tmp_path / "classical.json"
    monkeypatch.setattr(tuned, "table_path", lambda: path)
    operator = ct.make_operator((1, 16, 16), ct.Options(views=10))
    assert classical_name(operator) == "TV, x >= 0 (PDHG), untuned"          # before tuning: the first, untuned
    tuned.write_entry("ct", (64, 64), _entry({"tv": 30.0, "sart": 31.0}))
    tuned.write_entry("ct", (512, 512), _entry({"tv": 35.0, "sart": 33.0}, (512, 512)))
    assert set(json.loads(path.read_text())["tasks"]["ct"]) == {"64x64", "512x512"}
    assert tuned.entry_for("ct", (100, 100))["image_size"] == [64, 64]
    assert tuned.entry_for("ct", (300, 300))["image_size"] == [512, 512]
    assert tuned.entry_for("mri", (64, 64)) is None
    baseline, params, label = TASKS["ct"].strongest(operator, (16, 16))
    assert (baseline.name, params, label) == ("sart", {"iterations": 7, "relaxation": 0.15}, "SART (skimage), tuned")
    fan_like = CT(16, sparse_view_angles(10), n_detectors=20)         # not skimage's geometry: SART does not apply
    assert TASKS["ct"].strongest(fan_like, (16, 16))[0].name == "tv"
    assert TASKS["ct"].strongest(operator, (512, 512))[0].name == "tv"

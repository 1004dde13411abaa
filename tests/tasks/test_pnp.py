"""PnP-BM3D (scoremed.tasks.pnp): the ADMM loop with a cheap denoiser, BM3D on a small MRI problem, its
place among the classical baselines (a row of its own, never the warm start) and a missing bm3d package."""
from __future__ import annotations

import logging
import math
import sys

import pytest
import torch

import scoremed.tasks as tasks
from scoremed.apps.metrics import mean_metrics
from scoremed.denoising import bm3d_available
from scoremed.errors import InputError
from scoremed.operators import MRI, Inpainting, random_pixel_mask
from scoremed.tasks import TASKS, classical_name, make_operator, mri, own_row_baselines, tuned
from scoremed.tasks.pnp import pnp_admm, pnp_bm3d, sigma_schedule

needs_bm3d = pytest.mark.skipif(not bm3d_available(), reason="bm3d not installed")


def smooth_image(h: int = 64, w: int = 64, channels: int = 1) -> torch.Tensor:
    """A smooth test image (1, C, H, W) in [0.1, 0.9]: a blob on a gentle ramp."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    image = 0.1 + 0.3 * (xx + 1) / 2 + 0.5 * torch.exp(-((xx - 0.2) ** 2 + (yy + 0.1) ** 2) / 0.15)
    return image.clamp(0, 1).expand(1, channels, h, w).contiguous()


def box_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A cheap stand-in denoiser: a 3 x 3 mean filter (replicate padding)."""
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    return torch.nn.functional.avg_pool2d(padded, 3, stride=1)


def test_the_schedule_decreases_geometrically_and_checks_its_values():
    sigmas = sigma_schedule(0.2, 0.002, 5)
    assert sigmas[0] == pytest.approx(0.2) and sigmas[-1] == pytest.approx(0.002)
    assert all(b / a == pytest.approx(math.sqrt(0.1)) for a, b in zip(sigmas, sigmas[1:]))
    assert sigma_schedule(0.1, 0.01, 1) == [0.1]
    for bad in ({"sigma_start": 0.01, "sigma_end": 0.1, "iterations": 4}, {"sigma_start": 0.1, "sigma_end": 0.0,
                "iterations": 4}, {"sigma_start": 0.1, "sigma_end": 0.01, "iterations": 0}):
        with pytest.raises(InputError):
            sigma_schedule(**bad)


def test_admm_follows_the_schedule_and_keeps_the_measured_pixels():
    truth = smooth_image(32, 32)
    operator = Inpainting(random_pixel_mask((32, 32), missing_fraction=0.6, seed=0))
    y = operator(truth)
    seen, steps = [], []

    def denoiser(x, sigma):
        seen.append(sigma)
        return box_blur(x, sigma)

    x = pnp_admm(y, operator, denoiser, sigma_start=0.2, sigma_end=0.02, iterations=6, weight=1e-7, cg_iterations=5,
                 callback=lambda k, image: steps.append(k))
    assert seen == pytest.approx(sigma_schedule(0.2, 0.02, 6)) and steps == [1, 2, 3, 4, 5, 6]
    assert x.shape == truth.shape and x.dtype == truth.dtype
    known = operator.mask.bool().expand_as(x)
    assert torch.allclose(x[known], truth[known], atol=1e-3)   # weight << sigma^2: the data step projects
    assert mean_metrics(truth, x)["psnr"] > mean_metrics(truth, operator.pseudo_inverse(y))["psnr"] + 10
    with pytest.raises(InputError, match="^x0: expected images of shape"):
        pnp_admm(y, operator, denoiser, x0=torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize("operator", [
    Inpainting(random_pixel_mask((16, 16), missing_fraction=0.6, seed=1)),
    MRI(torch.rand(16, 16, generator=torch.Generator().manual_seed(0)).lt(0.4).float()),   # not conjugate-symmetric
], ids=["inpaint", "mri"])
def test_the_closed_form_data_step_is_the_converged_cg_one(operator):
    """Operators with prox_l2 take it as the data step; the same operator without it (1 * A) gets CG on the same
    normal equations, which converges in as many iterations as A^H A has distinct eigenvalues (at most 3)."""
    truth = smooth_image(16, 16)
    y = operator(truth)
    x0 = operator.pseudo_inverse(y)
    closed = pnp_admm(y, operator, box_blur, sigma_start=0.2, sigma_end=0.02, iterations=4, weight=1e-3, x0=x0)
    assert operator.has_prox_l2 and not (1 * operator).has_prox_l2
    cg = pnp_admm(y, 1 * operator, box_blur, sigma_start=0.2, sigma_end=0.02, iterations=4, weight=1e-3,
                  cg_iterations=6, x0=x0)
    torch.testing.assert_close(closed, cg, atol=1e-5, rtol=0)


@needs_bm3d
def test_pnp_bm3d_beats_the_zero_filled_mri_reconstruction():
    truth = smooth_image()
    operator = make_operator("mri", (1, 64, 64), mri.Options(accel=4, seed=0))
    y = operator(truth)
    (baseline, params, label), = own_row_baselines(operator)
    assert baseline.name == "pnp-bm3d" and label.startswith("PnP-BM3D")
    x = baseline.run(y, operator, **{**params, "iterations": 4})    # from the classical (TV) result
    assert x.shape == (1, 1, 64, 64) and x.dtype == torch.float32 and x.device == y.device
    direct = mean_metrics(truth, operator.pseudo_inverse(y))["psnr"]
    assert mean_metrics(truth, x)["psnr"] > direct + 3
    plain = pnp_bm3d(y, operator, start="direct", sigma_start=0.3, sigma_end=0.05, iterations=3)
    assert mean_metrics(truth, plain)["psnr"] > direct + 1


def test_a_missing_bm3d_package_is_an_input_error_and_a_skipped_row(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "bm3d", None)        # `import bm3d` fails, find_spec says missing
    monkeypatch.setattr(tasks, "_NOTED", set())
    operator = make_operator("mri", (1, 16, 16), mri.Options(accel=2))
    y = operator(smooth_image(16, 16))
    with pytest.raises(InputError, match=r"^bm3d: PnP-BM3D needs the optional bm3d package: pip install "
                                         r"'scoremed\[bm3d\]'"):
        pnp_bm3d(y, operator)
    caplog.set_level(logging.INFO, logger="scoremed")
    assert own_row_baselines(operator) == [] and own_row_baselines(operator) == []
    notes = [r.getMessage() for r in caplog.records if "PnP-BM3D" in r.getMessage()]
    assert notes == ["PnP-BM3D (ADMM): skipped, it needs the optional bm3d package (pip install 'scoremed[bm3d]')"]
    assert classical_name(operator).startswith("TV")


def test_pnp_has_a_row_of_its_own_and_is_never_the_strongest(tmp_path, monkeypatch):
    monkeypatch.setattr(tuned, "table_path", lambda: tmp_path / "classical.json")
    monkeypatch.setitem(sys.modules, "bm3d", None)
    operator = make_operator("mri", (1, 64, 64), mri.Options(accel=4))
    scores = {"tv": 25.0, "l1-wavelet": 20.0, "pnp-bm3d": 30.0}
    tuned.write_entry("mri", (64, 64), {"image_size": [64, 64], "strongest": "tv", "baselines": {
        name: {"params": {"weight": 0.5} if name == "pnp-bm3d" else {}, "psnr": psnr, "ssim": 0.5}
        for name, psnr in scores.items()}})
    assert TASKS["mri"].strongest(operator, (64, 64))[0].name == "tv"
    monkeypatch.delitem(sys.modules, "bm3d")
    assert TASKS["mri"].strongest(operator, (64, 64))[0].name == "tv"
    if bm3d_available():
        (baseline, params, label), = own_row_baselines(operator)
        assert params["weight"] == 0.5 and params["iterations"] == 10 and label == "PnP-BM3D (ADMM), tuned"
    complex_images = MRI(operator.mask, complex_images=True)        # BM3D denoises real images only
    assert own_row_baselines(complex_images) == []

"""PSNR / SSIM against closed forms and skimage; direct / classical / scoremed comparisons; stacks of
slices in batches give the same slices whatever the batching order."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

import scoremed
from conftest import smooth_gaussian
from scoremed.apps.compare import metrics_table, run_comparison
from scoremed.apps.metrics import PSNR_EXACT, batch_metrics, image_metrics, mean_metrics, stack_metrics
from scoremed.apps.stack import Batch, run_stack
from scoremed.tasks import inpaint, make_operator


def test_psnr_is_the_closed_form_and_ssim_is_skimage():
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(2, 3, 8, 8, generator=g) * 0.8 + 0.1
    noisy = truth + 0.05 * torch.randn(truth.shape, generator=g)
    per = batch_metrics(truth, noisy)
    for i in range(2):
        mse = float(((truth[i].double() - noisy[i].double().clamp(0, 1)) ** 2).mean())
        assert per["psnr"][i] == pytest.approx(10 * math.log10(1 / mse), rel=1e-9)
        ssim = structural_similarity(truth[i].double().numpy(), noisy[i].double().clamp(0, 1).numpy(),
                                     data_range=1.0, channel_axis=0)
        assert per["ssim"][i] == pytest.approx(ssim, rel=1e-9)
    assert mean_metrics(truth, noisy) == pytest.approx({k: float(v.mean()) for k, v in per.items()})
    assert image_metrics(truth[0], truth[0])["psnr"] == PSNR_EXACT


def test_stack_psnr_pools_every_voxel():
    truth = torch.zeros(3, 1, 7, 7)
    estimate = truth.clone()
    estimate[0] += 0.1                       # one slice off by 0.1: the pooled MSE is 0.01 / 3
    volume, per_slice = stack_metrics(truth, estimate)
    assert volume["psnr"] == pytest.approx(10 * math.log10(3 / 0.01))
    assert volume["slices"] == 3 and [p["slice"] for p in per_slice] == [0, 1, 2]
    assert per_slice[1]["psnr"] == PSNR_EXACT and per_slice[0]["psnr"] == pytest.approx(20.0)


@pytest.fixture(scope="module")
def gaussian_case():
    mean, cov = smooth_gaussian(8)
    prior = scoremed.gaussian_prior(scoremed.VESDE(sigma_max=5.0), mean, cov, (1, 8, 8))
    truth = (mean.reshape(1, 1, 8, 8) + 0.1).float().repeat(3, 1, 1, 1).clamp(0, 1)
    operator = make_operator("inpaint", (1, 8, 8), inpaint.Options(mask_kind="random", seed=1))
    return prior, operator, truth


def test_run_comparison_scores_every_method_against_the_truth(gaussian_case):
    prior, operator, truth = gaussian_case
    y = operator(truth[:2])
    results, std = run_comparison(y, operator, prior, truth=truth[:2], n_samples=2, steps=4, seed=0, progress=False)
    assert list(results) == ["direct", "classical", "scoremed"] and std.shape == (2, 1, 8, 8)
    for r in results.values():
        assert r.image.shape == (2, 1, 8, 8) and r.seconds >= 0
        assert r.metrics == pytest.approx(mean_metrics(truth[:2], r.image))
    table = metrics_table(results)
    assert f"{results['scoremed'].metrics['psnr']:.2f}" in table and "biharmonic" in table


def test_a_stack_gives_the_same_slices_whatever_the_batching(gaussian_case):
    prior, operator, truth = gaussian_case
    y = operator(truth)
    seen = []
    whole = run_stack([Batch(0, y[:2], operator, truth[:2]), lambda: Batch(2, y[2:], operator, truth[2:])], 3, prior,
                      seed=5, steps=4, progress=False, on_batch=lambda start, images: seen.append(start))
    assert seen == [0, 2] and whole.results["scoremed"].image.shape == (3, 1, 8, 8)
    alone = run_stack([Batch(2, y[2:], operator, truth[2:])], 1, prior, seed=5, steps=4, progress=False)
    torch.testing.assert_close(alone.results["scoremed"].image, whole.results["scoremed"].image[2:])
    assert len(whole.per_slice["scoremed"]) == 3
    assert whole.metrics_json()["scoremed"]["psnr"] == whole.results["scoremed"].metrics["psnr"]
    np.testing.assert_allclose(whole.truth.numpy(), truth.numpy())


@pytest.mark.parametrize("with_truth", [False, True])
def test_the_figure_has_one_panel_per_image_at_the_images_resolution(tmp_path, with_truth):
    import matplotlib.image

    from scoremed.apps.compare import MethodResult
    from scoremed.apps.figures import AXES_FRACTION, PANEL_INCHES, save_figure

    image = torch.rand(1, 1, 300, 300, generator=torch.Generator().manual_seed(0))
    results = {"scoremed": MethodResult("scoremed", image, 1.0)}      # measured data alone: one panel
    save_figure(tmp_path / "f.png", results, image * 0.9 if with_truth else None, None)
    height, width = matplotlib.image.imread(tmp_path / "f.png").shape[:2]
    panels = 3 if with_truth else 1                                     # truth | scoremed | |error|
    assert width >= panels * 300 / AXES_FRACTION                        # >= one figure pixel per image pixel
    assert width / panels == pytest.approx(height * PANEL_INCHES / (PANEL_INCHES + 0.4), rel=0.02)

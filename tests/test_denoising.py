"""Priors as denoisers and denoisers as priors, against the closed-form Gaussian posterior mean."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import scoremed
from scoremed.denoising import (bm3d_available, bm3d_denoiser, denoiser_prior, noise_to_signal, prior_denoiser,
                                time_of_noise_level)
from scoremed.errors import InputError
from conftest import smooth_gaussian

SDES = [scoremed.VESDE(sigma_min=0.01, sigma_max=50.0), scoremed.VPSDE(), scoremed.subVPSDE()]


def gaussian_posterior_mean(y: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, sigma: float) -> torch.Tensor:
    """E[x | y] for x ~ N(mean, cov), y = x + sigma n: mean + cov (cov + sigma^2 I)^-1 (y - mean), y (B, D)."""
    gain = cov @ torch.linalg.inv(cov + sigma ** 2 * torch.eye(len(mean), dtype=cov.dtype))
    return mean + (y - mean) @ gain.T


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_time_of_noise_level_inverts_the_noise_to_signal_ratio(sde):
    sigma = torch.tensor([0.011, 0.05, 0.2, 1.0, 5.0], dtype=torch.float64)
    t = time_of_noise_level(sde, sigma)
    assert torch.allclose(noise_to_signal(sde, t), sigma, rtol=1e-9)
    if isinstance(sde, scoremed.VESDE):   # closed form: sigma = sigma_min (sigma_max / sigma_min)^t
        assert torch.allclose(t, torch.log(sigma / 0.01) / math.log(5000.0), atol=1e-12)


def test_noise_levels_outside_the_sde_are_an_input_error():
    with pytest.raises(InputError, match="covers noise levels"):
        time_of_noise_level(scoremed.VESDE(sigma_min=0.01, sigma_max=50.0), torch.tensor([0.005]))


@pytest.mark.parametrize("sde", SDES[:2], ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("sigma", [0.02, 0.1, 0.5])
def test_the_tweedie_denoiser_of_a_gaussian_prior_is_its_posterior_mean(sde, sigma):
    mean, cov = smooth_gaussian(h=4)
    prior = scoremed.gaussian_prior(sde, mean, cov, image_shape=(1, 4, 4))
    g = torch.Generator().manual_seed(0)
    x = mean + torch.randn(3, 16, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    y = x + sigma * torch.randn(3, 16, generator=g, dtype=torch.float64)
    got = prior_denoiser(prior)(y.reshape(3, 1, 4, 4), sigma).reshape(3, 16)
    assert torch.allclose(got, gaussian_posterior_mean(y, mean, cov, sigma), atol=1e-6)


def test_a_centred_prior_sees_twice_the_noise_in_its_model_space():
    mean, cov = smooth_gaussian(h=4)
    sde = scoremed.VESDE(sigma_min=0.01, sigma_max=50.0)
    # data x in [0, 1] ~ N(mean, cov) is 2 x - 1 ~ N(2 mean - 1, 4 cov) in a centred prior's model space
    centred = scoremed.gaussian_prior(sde, 2 * mean - 1, 4 * cov, image_shape=(1, 4, 4))
    centred.centered = True
    y = mean[None] + 0.1 * torch.randn(2, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = prior_denoiser(centred)(y.reshape(2, 1, 4, 4), 0.1).reshape(2, 16)
    assert torch.allclose(got, gaussian_posterior_mean(y, mean, cov, 0.1), atol=1e-6)


@pytest.mark.parametrize("sde", SDES[:2], ids=lambda s: type(s).__name__)
def test_a_denoiser_prior_has_the_score_of_the_denoiser_it_came_from(sde):
    """The exact posterior-mean denoiser of a Gaussian, turned into a prior, gives back the Gaussian's score."""
    mean, cov = smooth_gaussian(h=4)
    exact = scoremed.gaussian_prior(sde, mean, cov, image_shape=(1, 4, 4))

    def posterior_mean(x, sigma):
        out = [gaussian_posterior_mean(xi.reshape(1, 16), mean, cov, float(s)) for xi, s in zip(x, sigma)]
        return torch.cat(out).reshape(x.shape)

    prior = denoiser_prior(posterior_mean, sde)
    t = torch.tensor([0.05, 0.3, 0.7], dtype=torch.float64)
    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.allclose(prior.score(x, t), exact.score(x, t), rtol=1e-6, atol=1e-6)
    assert prior.resolution_free


def test_a_denoiser_prior_solves_an_inpainting_problem():
    """Any denoiser is a prior for every solver: the exact Gaussian denoiser inpaints like the exact prior."""
    from scoremed.operators import Inpainting

    mean, cov = smooth_gaussian(h=4)
    sde = scoremed.VESDE(sigma_min=0.01, sigma_max=5.0)
    exact = scoremed.gaussian_prior(sde, mean, cov, image_shape=(1, 4, 4))
    prior = denoiser_prior(prior_denoiser(exact), sde, image_shape=(1, 4, 4))
    mask = torch.zeros(1, 4, 4)
    mask[..., :2, :] = 1
    op = Inpainting(mask)
    x = mean.reshape(1, 1, 4, 4).float() + 0.1
    ours = scoremed.solve(op(x), op, prior=prior, method="diffpir", steps=20, start="noise", seed=0)
    reference = scoremed.solve(op(x), op, prior=exact, method="diffpir", steps=20, start="noise", seed=0)
    assert torch.allclose(ours, reference, atol=1e-4)


def test_a_denoiser_that_changes_the_shape_is_named():
    prior = denoiser_prior(lambda x, s: x[..., :2, :], scoremed.VESDE())
    with pytest.raises(InputError, match="shaped like its input"):
        prior.score(torch.zeros(1, 1, 4, 4), torch.tensor([0.5]))


@pytest.mark.skipif(not bm3d_available(), reason="bm3d not installed")
@pytest.mark.parametrize("channels", [1, 3])
def test_bm3d_denoiser_is_the_packages_bm3d_and_removes_noise(channels):
    import bm3d

    rows = np.linspace(0, 1, 32)
    truth = torch.from_numpy(np.broadcast_to(0.2 + 0.6 * (rows[:, None] > 0.5), (channels, 32, 32)).copy()).float()
    noisy = truth + 0.1 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(3))
    got = bm3d_denoiser(noisy[None], 0.1)[0]
    direct = bm3d.bm3d(noisy[0].double().numpy(), 0.1) if channels == 1 else \
        bm3d.bm3d_rgb(noisy.double().numpy().transpose(1, 2, 0), 0.1).transpose(2, 0, 1)
    assert np.allclose(got.numpy().reshape(direct.shape), direct, atol=1e-5)
    assert float((got - truth).pow(2).mean()) < 0.2 * float((noisy - truth).pow(2).mean())


@pytest.mark.skipif(not bm3d_available(), reason="bm3d not installed")
def test_bm3d_rejects_other_channel_counts():
    with pytest.raises(InputError, match="BM3D denoises"):
        bm3d_denoiser(torch.zeros(1, 2, 8, 8), 0.1)


def test_merged_results_keep_their_place():
    from scoremed.benchmarks.denoise import Result, merge_results

    def result(prior, sigma, psnr):
        return Result(prior, "test 0", sigma, "prior", psnr, 0.9, 1.0)

    previous = [result("a", 0.1, 30.0), result("b", 0.1, 31.0), result("c", 0.1, 32.0)]
    merged = merge_results(previous, [result("b", 0.1, 35.0), result("d", 0.1, 33.0)])
    assert [(r.prior, r.psnr) for r in merged] == [("a", 30.0), ("b", 35.0), ("c", 32.0), ("d", 33.0)]


def test_another_data_sets_images_come_in_the_priors_channels_and_group_apart():
    from scoremed.benchmarks.denoise import Result, benchmark_images, summary_rows
    from scoremed.data import get_dataset

    images = benchmark_images("mri-brain", "val", 2, data="natural")
    photos = get_dataset("natural", "val", image_size=None)
    last = len(photos) - 1
    assert list(images) == ["natural val 0", f"natural val {last}"]          # no real scans added
    torch.testing.assert_close(images["natural val 0"], photos[0].mean(0, keepdim=True))
    results = [Result("mri-brain", label, 0.1, "prior", psnr, 0.9, 1.0)
               for label, psnr in [("val 0", 30.0), ("natural val 0", 20.0), ("natural val 5", 22.0), ("mr-head", 25.0)]]
    rows = {(row[1], row[3].split(" /")[0]) for row in summary_rows(results, [0.1])}
    assert rows == {("held-out (1)", "30.00"), ("natural val (2)", "21.00"), ("mr-head", "25.00")}

"""Resolution-free priors (image_shape (C, None, None)) through solve, sample and likelihood: the image
size comes from the operator, ``shape=`` or x; fixed-size priors are unchanged."""
from __future__ import annotations

import math

import pytest
import torch

import scoremed
from scoremed.errors import InputError
from scoremed.operators import CT, MRI, Grayscale, Inpainting, as_operator, cartesian_mask, sparse_view_angles

VARIANCE = 0.04


def iid_gaussian_prior(channels: int, sde=None) -> scoremed.ScorePrior:
    """Every pixel independently N(0, VARIANCE): a translation-invariant score of images of any size."""
    sde = sde or scoremed.VESDE(sigma_min=0.01, sigma_max=5.0, N=100)

    def score(x, t):
        std = sde.marginal_prob(x, t)[1].reshape(-1, *[1] * (x.ndim - 1))
        return -x / (VARIANCE + std ** 2)

    return scoremed.ScorePrior(sde, score, (channels, None, None), name="iid")


def test_smoke_patch_prior_reconstructs_48_and_96_measurements_at_those_sizes(smoke_patch_prior):
    assert smoke_patch_prior.resolution_free
    for n in (48, 96):
        yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        truth = (((xx - n / 2) / (0.4 * n)) ** 2 + ((yy - n / 2) / (0.45 * n)) ** 2 < 1).float()[None, None] * 0.6
        mask = cartesian_mask((n, n), 4, seed=0)
        op = MRI(mask)
        y = op(truth)
        x = scoremed.solve(y, op, prior=smoke_patch_prior, steps=10, seed=0, progress=False)
        assert x.shape == (1, 1, n, n) and bool(torch.isfinite(x).all())
        # consistent with the measured k-space, and more than the zero-filled image off the mask
        residual = torch.linalg.vector_norm(op(x) - y) / torch.linalg.vector_norm(y)
        assert float(residual) < 0.05
        unmeasured = MRI(1 - mask)(x - op.pseudo_inverse(y).real)
        assert float(torch.linalg.vector_norm(unmeasured)) > 1e-3
    samples = scoremed.sample_posterior(y, op, n=2, prior=smoke_patch_prior, steps=3, seed=0, progress=False)
    assert samples.shape == (2, 1, 1, 96, 96)


@pytest.mark.parametrize("make_op,y_shape,image", [
    (lambda: MRI(cartesian_mask((20, 28), 2, seed=0)), None, (1, 20, 28)),
    (lambda: CT(24, sparse_view_angles(6)), None, (1, 24, 24)),
    (lambda: Inpainting(torch.rand(18, 30) > 0.5), None, (1, 18, 30)),
    (lambda: Grayscale(), (2, 1, 14, 22), (3, 14, 22)),
    (lambda: as_operator(torch.nn.AvgPool2d(2), image_shape=(1, 16, 24)), None, (1, 16, 24)),
], ids=["mri-mask", "ct-image-size", "inpainting-mask", "grayscale-from-y", "user-image_shape"])
def test_sampling_shape_comes_from_the_operator(make_op, y_shape, image):
    op = make_op()
    prior = iid_gaussian_prior(image[0])
    y = torch.rand(y_shape) if y_shape else op(0.2 * torch.randn(1, *image))
    x = scoremed.solve(y, op, prior=prior, steps=4, seed=0, progress=False)
    assert x.shape == (y.shape[0], *image)
    assert prior.image_shape == (image[0], None, None)   # the caller's prior is not changed


def test_inpainting_posterior_mean_of_an_iid_gaussian_is_the_data_or_zero():
    # p(x) = prod N(0, v): observed pixels of the posterior mean are y, unobserved ones 0 (closed form)
    mask = torch.rand(12, 20, generator=torch.Generator().manual_seed(0)) > 0.5
    op = Inpainting(mask)
    truth = math.sqrt(VARIANCE) * torch.randn(1, 1, 12, 20, generator=torch.Generator().manual_seed(1))
    samples = scoremed.sample_posterior(op(truth), op, n=64, prior=iid_gaussian_prior(1), method="projection",
                                        steps=100, seed=0, progress=False)
    mean = samples.mean(0)[0, 0]
    torch.testing.assert_close(mean[mask], truth[0, 0][mask], atol=0.02, rtol=0)
    assert float(mean[~mask].abs().mean()) < 4 * math.sqrt(VARIANCE / 64)


def test_operators_that_cannot_size_the_images_are_refused():
    prior = iid_gaussian_prior(3)
    with pytest.raises(InputError, match="image_shape"):
        scoremed.solve(torch.rand(1, 3, 8, 8), torch.nn.Identity(), prior=prior, progress=False)
    volume = as_operator(torch.nn.Identity(), image_shape=(3, 4, 8, 8))
    with pytest.raises(InputError, match=r"operator: cannot size the images of resolution-free prior 'iid'"):
        scoremed.solve(torch.rand(1, 3, 4, 8, 8), volume, prior=prior, progress=False)
    one_channel = Inpainting(torch.ones(1, 8, 8))
    with pytest.raises(InputError, match=r"prior: 'iid' works on images \(3, 8, 8\), which does not fit"):
        scoremed.solve(torch.rand(1, 1, 8, 8), one_channel, prior=prior, progress=False)


def test_fixed_size_priors_keep_their_own_shape(smoke_prior):
    op = MRI(cartesian_mask((16, 16), 2, seed=0))
    y = op(torch.rand(1, 1, 16, 16))
    assert scoremed.solve(y, op, prior=smoke_prior, steps=3, seed=0, progress=False).shape == (1, 1, 16, 16)
    with pytest.raises(InputError, match=r"prior: 'smoke|prior:"):
        big = MRI(cartesian_mask((32, 32), 2, seed=0))
        scoremed.solve(big(torch.rand(1, 1, 32, 32)), big, prior=smoke_prior, steps=3, progress=False)


def test_sample_needs_a_shape_and_samples_the_prior_at_it():
    prior = iid_gaussian_prior(1)
    with pytest.raises(InputError, match="shape: prior 'iid' is resolution-free"):
        scoremed.sample(prior, n=1)
    x = scoremed.sample(prior, n=200, shape=(1, 5, 7), corrector="none", seed=0)
    assert x.shape == (200, 1, 5, 7)
    assert abs(float(x.mean())) < 0.01 and float(x.var()) == pytest.approx(VARIANCE, rel=0.1)
    assert scoremed.sample(prior, n=1, shape=(9, 4), steps=2, seed=0).shape == (1, 1, 9, 4)


def test_likelihood_takes_the_shape_from_x():
    prior = iid_gaussian_prior(1, scoremed.VESDE(sigma_min=0.01, sigma_max=50.0, N=100))
    normal = torch.distributions.Normal(0.0, math.sqrt(VARIANCE))
    for shape in [(2, 1, 2, 3), (1, 1, 3, 2)]:
        x = math.sqrt(VARIANCE) * torch.randn(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        truth = -normal.log_prob(x).flatten(1).sum(1) / (x[0].numel() * math.log(2))
        bpd = scoremed.likelihood(x, prior, exact_trace=True)
        assert bpd.shape == (shape[0],)
        torch.testing.assert_close(bpd, truth, atol=0.01, rtol=0)
    with pytest.raises(InputError, match=r"x: expected a tensor of shape \(B, 1, any, any\)"):
        scoremed.likelihood(torch.rand(1, 3, 4, 4), prior)

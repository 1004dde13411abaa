"""Calibrated posterior std: on a Gaussian prior with a linear operator (exact posterior) the calibrated
coverage is within its Monte-Carlo error of nominal, the N-sample factor is what an exact sampler
needs, the fit recovers a known scale, and the stored scale reaches the std map of a comparison."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import t as student_t

import scoremed
from scoremed.analytic import gaussian_posterior
from scoremed.benchmarks.calibration import (calibration_record, coverage, error_std_correlation, fit_scale,
                                             per_image_coverage)
from scoremed.calibration import LEVEL, Z, calibrated_std, sample_factor
from scoremed.operators import Inpainting, random_pixel_mask

H, N_SAMPLES, N_IMAGES, NOISE_VAR = 8, 4, 600, 1e-4


def exact_t_coverage(n: int, factor: float) -> float:
    """P(|truth - mean| <= Z factor std) for n exact Gaussian samples: P(|t_{n-1}| < Z factor / sqrt(1 + 1/n))."""
    return float(2 * student_t.cdf(Z * factor / math.sqrt(1 + 1 / n), n - 1) - 1)


@pytest.fixture(scope="module")
def exact_posterior_draws():
    """Truths x ~ N(mu, Sigma) (8 x 8, squared-exponential), y = A x + noise for a 50 % random-pixel
    inpainting operator, and N_SAMPLES exact posterior samples of each: (truth (T, 1, 8, 8), samples
    (N, T, 1, 8, 8), posterior std (64,))."""
    g = torch.Generator().manual_seed(0)
    grid = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(H), indexing="ij"), -1).reshape(-1, 2).double()
    cov = 0.05 * torch.exp(-((grid[:, None] - grid[None]) ** 2).sum(-1) / 8.0) + 1e-3 * torch.eye(H * H).double()
    mean = torch.full((H * H,), 0.5, dtype=torch.float64)
    operator = Inpainting(random_pixel_mask((H, H), missing_fraction=0.5, seed=1))
    basis = torch.eye(H * H, dtype=torch.float64).reshape(-1, 1, H, H)
    A = operator.double()(basis).reshape(H * H, -1).T
    truth = mean + torch.randn(N_IMAGES, H * H, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    y = truth @ A.T + math.sqrt(NOISE_VAR) * torch.randn(N_IMAGES, A.shape[0], generator=g, dtype=torch.float64)
    _, post_cov = gaussian_posterior(A, y[0], mean, cov, NOISE_VAR)
    post_mean = torch.stack([gaussian_posterior(A, yi, mean, cov, NOISE_VAR)[0] for yi in y])
    chol = torch.linalg.cholesky(post_cov)
    samples = post_mean + torch.randn(N_SAMPLES, N_IMAGES, H * H, generator=g, dtype=torch.float64) @ chol.T
    shape = (1, H, H)
    return truth.reshape(-1, *shape), samples.reshape(N_SAMPLES, -1, *shape), post_cov.diagonal().sqrt()


def mc_error(per_image: torch.Tensor) -> float:
    """Standard error of the mean coverage over independent images (pixels of one image are correlated)."""
    return float(per_image.std() / math.sqrt(len(per_image)))


def test_calibrated_coverage_of_an_exact_gaussian_posterior_is_nominal_within_its_mc_error(exact_posterior_draws):
    truth, samples, _ = exact_posterior_draws
    half = N_IMAGES // 2
    record = calibration_record(truth[:half], samples[:, :half], truth[half:], samples[:, half:])
    test_truth, test_samples = truth[half:], samples[:, half:]
    mean, std = test_samples.mean(0), test_samples.std(0)
    per_image = per_image_coverage(test_truth, mean, std * record["std_scale"] * sample_factor(N_SAMPLES))
    error = mc_error(per_image)
    assert error < 0.01                                     # the check has power: 4 MC errors < 4 points
    assert abs(record["test"]["coverage_calibrated"] - LEVEL) < 4 * error, (record, error)
    # an exact sampler needs no scale beyond the N-sample factor: the fit finds 1 within its MC error,
    # estimated from fits on disjoint blocks of the validation images
    blocks = [fit_scale(truth[i:i + 50], samples[:, i:i + 50].mean(0), samples[:, i:i + 50].std(0), N_SAMPLES)
              for i in range(0, half, 50)]
    scale_error = float(torch.tensor(blocks).std()) / math.sqrt(len(blocks))
    assert scale_error < 0.03 and abs(record["std_scale"] - 1) < 4 * scale_error, (record, blocks)
    # without any fitting, the N-sample factor alone gives nominal coverage; the raw std gives the t law's
    for factor, expected in ((sample_factor(N_SAMPLES), LEVEL), (1.0, exact_t_coverage(N_SAMPLES, 1.0))):
        per_image = per_image_coverage(test_truth, mean, std * factor)
        assert abs(float(per_image.mean()) - expected) < 4 * mc_error(per_image), (factor, expected)
    assert exact_t_coverage(N_SAMPLES, 1.0) < 0.8 and record["test"]["coverage_raw"] < 0.8


def test_sample_factor_is_the_t_quantile_correction_and_tends_to_one():
    for n in (2, 4, 16):
        assert exact_t_coverage(n, sample_factor(n)) == pytest.approx(LEVEL, abs=1e-9)
    assert sample_factor(4) > sample_factor(16) > sample_factor(10_000) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("k", [0.6, 1.0, 1.7])
def test_fit_recovers_a_known_scale_on_synthetic_data(k):
    """Truth ~ N(m, (k sigma)^2), n samples ~ N(m, sigma^2) per pixel (independent pixels): the scale that
    makes the n-sample interval cover 90 % is sqrt((k^2 + 1/n) / (1 + 1/n)), recovered within the sample
    quantile's MC error (delta method: sqrt(p (1 - p) / P) / (2 f_t(t_q) t_q) relative), and it covers
    fresh data within the binomial error."""
    n, pixels = 6, 40_000
    g = torch.Generator().manual_seed(2)

    def draw():
        m = torch.rand(pixels, generator=g, dtype=torch.float64)
        sigma = 0.02 + 0.1 * torch.rand(pixels, generator=g, dtype=torch.float64)
        truth = m + k * sigma * torch.randn(pixels, generator=g, dtype=torch.float64)
        return truth, m + sigma * torch.randn(n, pixels, generator=g, dtype=torch.float64)

    truth, samples = draw()
    scale = fit_scale(truth, samples.mean(0), samples.std(0), n)
    expected = math.sqrt((k * k + 1 / n) / (1 + 1 / n))
    t_q = student_t.ppf((1 + LEVEL) / 2, n - 1)
    relative = math.sqrt(LEVEL * (1 - LEVEL) / pixels) / (2 * student_t.pdf(t_q, n - 1) * t_q)
    assert abs(scale / expected - 1) < 4 * relative, (scale, expected, relative)
    fresh_truth, fresh = draw()
    covered = coverage(fresh_truth, fresh.mean(0), fresh.std(0) * scale * sample_factor(n))
    assert abs(covered - LEVEL) < 4 * math.sqrt(LEVEL * (1 - LEVEL) / pixels)


def test_correlation_of_std_and_error_is_positive_when_the_spread_varies_and_zero_when_not():
    g = torch.Generator().manual_seed(3)
    sigma = 0.01 + torch.rand(50_000, generator=g, dtype=torch.float64)
    error = sigma * torch.randn(50_000, generator=g, dtype=torch.float64)
    assert error_std_correlation(error, torch.zeros_like(error), sigma) > 0.4
    shuffled = sigma[torch.randperm(len(sigma), generator=g)]
    assert abs(error_std_correlation(error, torch.zeros_like(error), shuffled)) < 0.02


def test_the_stored_scale_is_applied_to_the_std_and_named():
    prior = scoremed.gaussian_prior(scoremed.VPSDE(), torch.zeros(4), torch.eye(4), (1, 2, 2))
    samples = torch.randn(5, 3, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    std, note = calibrated_std(samples, prior, "dds")
    torch.testing.assert_close(std, samples.std(0))
    assert note == "std uncalibrated"
    prior.metadata["calibration"] = {"dds": {"std_scale": 1.5}}
    std, note = calibrated_std(samples, prior, "dds")
    factor = 1.5 * sample_factor(5)
    torch.testing.assert_close(std, samples.std(0) * factor)
    assert note == f"std x{factor:.2f}, calibrated"
    assert calibrated_std(samples, prior, "consistency")[1] == "std uncalibrated"


def test_a_comparison_writes_the_calibrated_std_and_says_so():
    from scoremed.apps.compare import run_comparison
    from scoremed.tasks import inpaint, make_operator

    prior = scoremed.gaussian_prior(scoremed.VESDE(sigma_max=5.0), torch.full((16,), 0.5), 0.05 * torch.eye(16),
                                    (1, 4, 4))
    operator = make_operator("inpaint", (1, 4, 4), inpaint.Options(mask_kind="random", seed=1))
    y = operator(torch.full((1, 1, 4, 4), 0.5))
    options = dict(n_samples=3, steps=4, seed=0, progress=False, method="projection")
    raw = run_comparison(y, operator, prior, **options)[1]
    prior.metadata["calibration"] = {"projection": {"std_scale": 2.0}}
    results, std = run_comparison(y, operator, prior, **options)
    torch.testing.assert_close(std, raw * 2.0 * sample_factor(3))
    assert results["scoremed"].label == f"scoremed (projection; std x{2.0 * sample_factor(3):.2f}, calibrated)"


def test_a_scale_fitted_for_other_weights_is_ignored_and_not_stored(tmp_path):
    import json

    from scoremed.benchmarks.calibration import store_calibration
    from scoremed.calibration import stored_scale
    from scoremed.errors import InputError

    prior = scoremed.gaussian_prior(scoremed.VPSDE(), torch.zeros(4), torch.eye(4), (1, 2, 2))
    prior.metadata.update(weights_sha256="new", calibration={"dds": {"std_scale": 1.5, "weights_sha256": "old"}})
    assert stored_scale(prior, "dds") is None
    prior.metadata["calibration"]["dds"]["weights_sha256"] = "new"
    assert stored_scale(prior, "dds") == 1.5
    (tmp_path / "p.json").write_text(json.dumps({"weights_sha256": "new"}))
    with pytest.raises(InputError, match="^prior: 'p' was re-exported while it was calibrated"):
        store_calibration("p", "dds", {"std_scale": 1.2, "weights_sha256": "old"}, tmp_path)
    store_calibration("p", "dds", {"std_scale": 1.2, "weights_sha256": "new"}, tmp_path)
    assert json.loads((tmp_path / "p.json").read_text())["calibration"]["dds"]["std_scale"] == 1.2


def test_a_scale_applies_only_to_the_start_it_was_fitted_from():
    from scoremed.apps.compare import run_comparison
    from scoremed.calibration import stored_scale
    from scoremed.tasks import inpaint, make_operator

    prior = scoremed.gaussian_prior(scoremed.VESDE(sigma_max=5.0), torch.full((16,), 0.5), 0.05 * torch.eye(16),
                                    (1, 4, 4))
    prior.metadata["calibration"] = {"dds": {"std_scale": 1.5}}   # no start recorded: fitted from noise
    assert stored_scale(prior, "dds") == 1.5
    assert stored_scale(prior, "dds", "classical@0.2") is None
    prior.metadata["calibration"] = {"dds": {"std_scale": 2.0, "start": "classical@0.3"}}
    assert stored_scale(prior, "dds", "classical@0.3") == 2.0
    assert stored_scale(prior, "dds") is None
    operator = make_operator("inpaint", (1, 4, 4), inpaint.Options(mask_kind="random", seed=1))
    y = operator(torch.full((1, 1, 4, 4), 0.5))
    options = dict(n_samples=3, steps=4, seed=0, progress=False, method="dds", t_start=0.3)
    for start, calibrated in (("auto", True), ("classical", True), ("direct", False), ("noise", False)):
        label = run_comparison(y, operator, prior, start=start, **options)[0]["scoremed"].label
        assert ("calibrated" in label and "uncalibrated" not in label) == calibrated, (start, label)

"""Fast sampling: DDIM / DPM-Solver++(2M) predictors and the shortened schedule from the direct
reconstruction against closed forms; speed options on the CPU; no host synchronisation inside
the sampling loop."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import scoremed
from scoremed.errors import InputError
from scoremed.networks import FastScore, fast_score
from scoremed.operators import MRI, Inpainting, cartesian_mask, random_pixel_mask
from scoremed.sampling import CORRECTORS, PREDICTORS
from scoremed.sampling import pc_sampler
from scoremed.settings import settings_for
from scoremed.solve import schedule
from conftest import smooth_gaussian
from test_solve import gaussian_case, posterior_mean

REPO_ROOT = Path(__file__).resolve().parents[1]   # the checkout (scripts/, configs/)

H = 8


class Counting:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.fn(x, t)


def test_second_order_beats_first_order_at_equal_evaluations():
    mean, cov = smooth_gaussian(4)
    sde = scoremed.VESDE(sigma_max=5.0)
    prior = scoremed.gaussian_prior(sde, mean, cov, (1, 4, 4))
    errors = {}
    for name in ("ddim", "dpm2m"):
        g = torch.Generator().manual_seed(0)
        x_init = sde.prior_sampling((4000, 1, 4, 4), g) + mean.float().reshape(1, 1, 4, 4)
        x = pc_sampler(sde.with_steps(10), prior.score, (4000, 1, 4, 4), PREDICTORS[name], CORRECTORS["none"],
                       x_init=x_init, generator=g).samples.reshape(4000, -1).double()
        errors[name] = float((torch.cov(x.T) - cov).norm() / cov.norm())
    assert errors["dpm2m"] < 0.5 * errors["ddim"]


@pytest.mark.parametrize("options", [
    {"predictor": "ddim", "corrector": "none", "steps": 40},
    {"predictor": "dpm2m", "corrector": "none", "steps": 40},
    {"start": "direct", "t_start": 0.5, "steps": 40},
    {"start": "direct", "t_start": 0.5, "predictor": "dpm2m", "corrector": "none", "steps": 30},
    {"start": "classical", "t_start": 0.5, "steps": 40},
], ids=["ddim", "dpm2m", "direct-start-pc", "direct-start-dpm2m", "classical-start-pc"])
def test_fast_conditional_samplers_find_the_posterior_mean(options):
    prior, mean, cov, x = gaussian_case(scoremed.VPSDE())
    operator = MRI(cartesian_mask((H, H), accel=2, center_fraction=0.25, seed=0))
    y = operator(x)
    truth = posterior_mean(operator.double(), y, mean, cov)
    operator.float()
    samples = scoremed.sample_posterior(y, operator, n=200, prior=prior, seed=0, progress=False, **options)
    error = (samples.mean(0).reshape(-1).double() - truth).norm()
    assert error < 0.3 * (mean - truth).norm()


def test_direct_start_takes_the_requested_number_of_steps_from_t_start():
    prior, _, _, x = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    counting = Counting(prior.score_fn)
    counted = scoremed.ScorePrior(prior.sde, counting, prior.image_shape)
    operator = Inpainting(random_pixel_mask((H, H), missing_fraction=0.5, seed=2))
    for steps, t_start in ((7, 0.3), (25, 0.6), (50, 0.05)):
        counting.calls = 0
        x_hat = scoremed.solve(operator(x), operator, prior=counted, steps=steps, start="direct", t_start=t_start,
                               corrector="none", seed=0, progress=False)
        assert counting.calls == steps
        torch.testing.assert_close(operator(x_hat), operator(x), atol=1e-5, rtol=0)
        grid = schedule(prior.sde, settings_for("consistency", prior, steps=steps, start="direct", t_start=t_start))
        assert grid.N >= steps


def test_classical_start_refines_the_tuned_classical_reconstruction():
    """From the classical estimate perturbed to a tiny t_start, one step stays at that estimate (up to
    the step's noise of std ~0.01), far from where the direct (zero-filled) start lands."""
    from scoremed.tasks import classical_reconstruction

    prior, _, _, x = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    operator = MRI(cartesian_mask((H, H), accel=4, center_fraction=0.25, seed=0))
    y = operator(x)
    classical = classical_reconstruction(y, operator)
    distance = {start: float((scoremed.solve(y, operator, prior=prior, method="projection", steps=1, corrector="none",
                                             start=start, t_start=1e-3, seed=0, progress=False) - classical).norm())
                for start in ("classical", "direct")}
    assert distance["classical"] < 0.1 < distance["direct"]
    assert distance["classical"] < 0.5 * distance["direct"]


def test_classical_start_needs_an_operator_of_a_known_task():
    prior, _, _, x = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    weights = torch.linspace(0.5, 1.5, H * H).reshape(1, 1, H, H)
    operator = scoremed.operators.as_operator(lambda v: v * weights, image_shape=(1, H, H))
    with pytest.raises(InputError, match="start: 'classical' needs an operator"):
        scoremed.solve(operator(x), operator, prior=prior, steps=3, start="classical", t_start=0.3, progress=False)


def test_a_given_start_image_replaces_the_computed_classical_start():
    from scoremed.tasks import classical_reconstruction

    prior, _, _, x = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    operator = MRI(cartesian_mask((H, H), accel=4, center_fraction=0.25, seed=0))
    y = operator(x)
    run = dict(prior=prior, method="diffpir", steps=4, t_start=0.3, seed=0, progress=False)
    classical = classical_reconstruction(y, operator)
    torch.testing.assert_close(scoremed.solve(y, operator, start_image=classical, start="auto", **run),
                               scoremed.solve(y, operator, start="classical", **run))
    # a user operator has no classical baseline, but a start image of the user's own makes "auto" warm
    custom = scoremed.operators.as_operator(lambda v: operator(v), image_shape=(1, H, H))
    tiny = dict(run, method="projection", steps=1, corrector="none", t_start=1e-3)
    warm = scoremed.solve(y, custom, start_image=classical, start="auto", **tiny)
    assert float((warm - classical).norm()) < 0.1 * float(classical.norm())


@pytest.mark.parametrize("bad, match", [
    ({"start": "noise", "start_image": torch.zeros(1, 1, H, H)}, "start_image: needs start='classical' or 'auto'"),
    ({"start": "direct", "t_start": 0.3, "start_image": torch.zeros(1, 1, H, H)}, "start_image: needs start="),
    ({"start": "auto", "start_image": torch.zeros(1, 1, H + 1, H)}, r"start_image: expected shape \(1, 1, 8, 8\)"),
    ({"start": "auto", "start_image": torch.zeros(1, 1, H, H, dtype=torch.int64)}, "start_image: expected a real floating"),
    ({"start": "auto", "start_image": torch.full((1, 1, H, H), float("nan"))}, "start_image: contains NaN"),
    ({"start": "middle"}, "start: expected one of"),
    ({"start": "direct", "t_start": 1.5}, "t_start: expected a value"),
    ({"precision": "fp16"}, "precision: expected one of"),
    ({"compile": "fast"}, "compile: expected one of"),
    ({"compile": "reduce-overhead"}, "CUDA graphs and needs a CUDA device"),
    ({"channels_last": "yes"}, "channels_last: expected true or false"),
])
def test_bad_fast_options_are_named(bad, match):
    prior, _, _, x = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    operator = Inpainting(random_pixel_mask((H, H), missing_fraction=0.5, seed=2))
    with pytest.raises(InputError, match=match):
        scoremed.solve(operator(x), operator, prior=prior, steps=3, progress=False, **bad)


def test_speed_options_are_off_by_default_and_work_on_the_cpu(smoke_prior):
    net = smoke_prior.score_fn
    assert fast_score(net, "cpu") is net                       # defaults: the plain network, bit-identical
    assert fast_score(net, "cpu", precision="auto") is net     # auto = fp32 on the CPU
    x, t = torch.rand(2, *smoke_prior.image_shape), torch.tensor([0.3, 0.8])
    with torch.no_grad():
        ref = net(x, t)
        bf16 = FastScore(net, "cpu", precision="bf16")(x, t)
        assert bf16.dtype == torch.float32
        assert (bf16 - ref).norm() / ref.norm() < 0.05
        cl = FastScore(net, "cpu", channels_last=True)(x, t)
        torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-4)
    net.to(memory_format=torch.contiguous_format)


def test_speed_options_pass_through_solve(smoke_prior):
    operator = MRI(cartesian_mask((16, 16), accel=2, center_fraction=0.25, seed=1))
    x = torch.rand(1, 1, 16, 16) * 0.5 + 0.25
    plain = scoremed.solve(operator(x), operator, prior=smoke_prior, steps=8, seed=0, progress=False)
    fast = scoremed.solve(operator(x), operator, prior=smoke_prior, steps=8, seed=0, progress=False,
                          precision="bf16", channels_last=True)
    smoke_prior.network.to(memory_format=torch.contiguous_format)
    assert torch.isfinite(fast).all()
    assert (fast - plain).norm() / plain.norm() < 0.1


def test_no_host_synchronisation_inside_the_sampling_loop(monkeypatch, smoke_prior):
    """Host reads of tensor values (item, bool, int, float, tolist) do not grow with the step count."""
    operator = MRI(cartesian_mask((16, 16), accel=2, center_fraction=0.25, seed=1))
    y = operator(torch.rand(1, 1, 16, 16) * 0.5 + 0.25)
    operator.norm(smoke_prior.image_shape)  # computed once per operator (host reads), then cached
    reads = {"n": 0}

    def counting(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            reads["n"] += 1
            return original(self, *args, **kwargs)
        return wrapper

    for name in ("item", "__bool__", "__int__", "__float__", "tolist", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    assert bool(torch.tensor(True)) and float(torch.tensor(1.0)) and reads["n"] == 2   # the counter works
    counts = {}
    for predictor, corrector in (("reverse_diffusion", "langevin"), ("dpm2m", "none")):
        for steps in (5, 20):
            reads["n"] = 0
            scoremed.solve(y, operator, prior=smoke_prior, steps=steps, seed=0, progress=False, predictor=predictor,
                           corrector=corrector)
            counts[predictor, steps] = reads["n"]
    monkeypatch.undo()
    assert counts["reverse_diffusion", 5] == counts["reverse_diffusion", 20], counts
    assert counts["dpm2m", 5] == counts["dpm2m", 20], counts


@pytest.mark.slow
def test_training_speed_flags_on_the_cpu(tmp_path):
    script = str(REPO_ROOT / "scripts" / "train_prior.py")
    bad = subprocess.run([sys.executable, script, "--config", "smoke", "--out", str(tmp_path), "--steps", "2",
                          "--compile", "reduce-overhead", "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "CUDA graphs" in bad.stderr and not (tmp_path / "log.csv").exists()
    ok = subprocess.run([sys.executable, script, "--config", "smoke", "--out", str(tmp_path), "--steps", "2",
                         "--precision", "bf16", "--channels-last", "--device", "cpu", "--no-progress"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "checkpoints" / "step_00000002").is_dir()


def test_fast_settings_can_be_stored_with_the_prior():
    """A config's `solve:` section (stored as the prior's solve_defaults) switches the fast sampler on."""
    prior, _, _, x = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    counting = Counting(prior.score_fn)
    stored = scoremed.ScorePrior(prior.sde, counting, prior.image_shape, solve_defaults={
        "consistency": {"start": "direct", "t_start": 0.4, "steps": 6, "predictor": "dpm2m", "corrector": "none",
                        "precision": "fp32"}})
    operator = Inpainting(random_pixel_mask((H, H), missing_fraction=0.5, seed=2))
    scoremed.solve(operator(x), operator, prior=stored, seed=0, progress=False)
    assert counting.calls == 6
    counting.calls = 0
    scoremed.solve(operator(x), operator, prior=stored, seed=0, progress=False, start="noise", steps=4)
    assert counting.calls == 4


def test_auto_start_is_classical_for_task_operators_and_noise_for_others():
    from scoremed.solve import resolve_start

    prior, _, _, _ = gaussian_case(scoremed.VESDE(sigma_max=5.0))
    settings = settings_for("diffpir", prior, start="auto", t_start=0.3)
    mri = MRI(cartesian_mask((H, H), accel=4, center_fraction=0.25, seed=0))
    custom = scoremed.operators.as_operator(lambda v: 2 * v, image_shape=(1, H, H))
    assert resolve_start(settings, mri).start == "classical"
    assert resolve_start(settings, custom).start == "noise"

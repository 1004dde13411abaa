"""Trainer: DSM learns a Gaussian's score; checkpoints save, load and resume exactly."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

import scoremed
from scoremed.analytic import GaussianScore
from scoremed.io.checkpoint import latest_checkpoint
from scoremed.training.config import config_from_dict, load_config
from scoremed.errors import InputError
from scoremed.training import Trainer, TrainingDiverged

REPO_ROOT = Path(__file__).resolve().parents[1]   # the checkout (scripts/, configs/)
from conftest import smooth_gaussian


class GaussianImages(Dataset):
    def __init__(self, mean, cov, n=4096, h=8, value=None):
        g = torch.Generator().manual_seed(0)
        z = torch.randn(n, cov.shape[0], generator=g, dtype=torch.float64)
        self.x = (mean + z @ torch.linalg.cholesky(cov).T).float().reshape(n, 1, h, h)
        if value is not None:
            self.x[:] = value

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


def tiny_config(**training):
    return config_from_dict({
        "name": "tiny", "data": {"image_size": 8, "channels": 1},
        "sde": {"kind": "vesde", "sigma_min": 0.01, "sigma_max": 2.0},
        "model": {"channels": [32, 32], "attention_levels": [False, False], "norm_num_groups": 8,
                  "num_head_channels": 8},
        "training": {"batch_size": 32, "lr": 2e-3, "warmup": 20, "ema_decay": 0.95, "checkpoint_every": 100,
                     "log_every": 20, **training}})


def _score_error(net, exact, sde, n=64):
    g = torch.Generator().manual_seed(5)
    errors = []
    for t in (0.3, 0.6, 0.9):
        tt = torch.full((n,), t)
        x = exact.mean.float().reshape(1, 1, 8, 8) + sde.marginal_std(tt)[0] * torch.randn(n, 1, 8, 8, generator=g)
        with torch.no_grad():
            s_net, s_true = net(x, tt), exact(x, tt)
        errors.append(((s_net - s_true).norm() / s_true.norm()).item())
    return sum(errors) / len(errors)


@pytest.mark.slow
def test_dsm_training_lowers_loss_and_approaches_the_analytic_score(tmp_path):
    mean, cov = smooth_gaussian(8)
    config = tiny_config(steps=300)
    trainer = Trainer(config, GaussianImages(mean, cov), tmp_path, device="cpu", progress=False)
    exact = GaussianScore(trainer.sde, mean, cov, (1, 8, 8))
    before = _score_error(trainer.model, exact, trainer.sde)
    trainer.train()
    after = _score_error(trainer.ema.module, exact, trainer.sde)
    losses = [float(line.split(",")[1]) for line in (tmp_path / "log.csv").read_text().splitlines()[1:]]
    assert losses[-1] < 0.7 * losses[0]
    assert after < 0.5 * before and after < 0.35


def test_save_load_gives_identical_outputs_and_resume_continues(tmp_path, smoke_run):
    prior = scoremed.load_prior(smoke_run)
    x, t = torch.rand(2, *prior.image_shape), torch.tensor([0.2, 0.7])
    path = scoremed.save_prior(tmp_path / "copy", prior, prior.metadata["architecture"])
    again = scoremed.load_prior(path)
    torch.testing.assert_close(again.score(x, t), prior.score(x, t), rtol=0, atol=0)
    assert json.loads((tmp_path / "copy.json").read_text())["format_version"] == 1

    config = load_config(REPO_ROOT / "configs" / "smoke.yaml")
    from scoremed.data import training_dataset
    first = Trainer(config, training_dataset(config), tmp_path / "run", progress=False)
    first.train(10)
    resumed = Trainer(config, training_dataset(config), tmp_path / "run", resume=True, progress=False)
    assert resumed.step == 10
    resumed.train(20)
    straight = Trainer(config, training_dataset(config), tmp_path / "straight", progress=False)
    straight.train(20)
    assert latest_checkpoint(tmp_path / "run").name == "step_00000020"
    for a, b in zip(resumed.model.parameters(), straight.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    mean, cov = smooth_gaussian(8)
    config = tiny_config(steps=40, checkpoint_every=20, log_every=20)
    data = GaussianImages(mean, cov, n=64)
    Trainer(config, data, tmp_path, progress=False).train(20)
    data.x[:] = float("nan")
    trainer = Trainer(config, data, tmp_path, resume=True, progress=False)
    with pytest.raises(TrainingDiverged, match="NaN"):
        trainer.train()
    assert latest_checkpoint(tmp_path).name == "step_00000020"
    assert all(torch.isfinite(p).all() for p in scoremed.load_prior(tmp_path).network.parameters())


def test_config_rejects_misspelt_keys(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntraining: {stepz: 10}\n")
    with pytest.raises(InputError, match=r"training.stepz.*did you mean 'steps'"):
        load_config(bad)


@pytest.mark.slow
def test_train_prior_cli_runs_and_resumes(tmp_path):
    script = str(REPO_ROOT / "scripts" / "train_prior.py")
    run = [sys.executable, script, "--config", "smoke", "--out", str(tmp_path), "--no-progress"]
    done = subprocess.run(run + ["--steps", "10"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(run + ["--steps", "20", "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "resumed" in done.stderr
    assert latest_checkpoint(tmp_path).name == "step_00000020"
    bad = subprocess.run([sys.executable, script, "--config", "nope"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "error: --config" in bad.stderr


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_at_the_current_step(tmp_path):
    import signal
    import time

    script = str(REPO_ROOT / "scripts" / "train_prior.py")
    proc = subprocess.Popen([sys.executable, script, "--config", "smoke", "--out", str(tmp_path), "--steps", "100000",
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    # stop waiting when the run has ended (a crash at start-up then fails in seconds, not after the deadline)
    while latest_checkpoint(tmp_path) is None and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    last_logged = int((tmp_path / "log.csv").read_text().splitlines()[-1].split(",")[0])
    saved = int(latest_checkpoint(tmp_path).name.split("_")[1])
    assert saved >= last_logged and "interrupted" in err


def test_init_starts_from_a_priors_weights_and_refuses_another_architecture(tmp_path, smoke_run):
    from scoremed.data import training_dataset

    config = load_config(REPO_ROOT / "configs" / "smoke.yaml")
    source = scoremed.load_prior(smoke_run)
    tuned = Trainer(config, training_dataset(config), tmp_path / "tuned", progress=False, init=smoke_run)
    assert tuned.step == 0
    for a, b in zip(tuned.model.parameters(), source.network.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    tuned.train(2)
    meta = json.loads((latest_checkpoint(tmp_path / "tuned") / "metadata.json").read_text())
    assert meta["initialised_from"]["prior"] == str(smoke_run) and meta["step"] == 2
    with pytest.raises(InputError, match="either resume or init"):
        Trainer(config, training_dataset(config), tmp_path / "tuned", progress=False, init=smoke_run, resume=True)
    other = tiny_config(steps=1)
    with pytest.raises(InputError, match=r"\(init\) does not match the architecture"):
        Trainer(other, GaussianImages(*smooth_gaussian(8), n=8), tmp_path / "x", progress=False, init=smoke_run)

"""Crash safety: training killed with SIGKILL at random moments resumes to the same weights;
a save that fails half-way leaves the previous checkpoint as the latest and no partial files."""
from __future__ import annotations

import copy
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import scoremed
from scoremed.io.atomic import atomic_write
from scoremed.io.checkpoint import latest_checkpoint, save_training_checkpoint
from scoremed.priors import save_prior

REPO_ROOT = Path(__file__).resolve().parents[1]   # the checkout (scripts/, configs/)

STEPS = 100          # the smoke config checkpoints every 10 steps
KILLS = 2
SCRIPT = str(REPO_ROOT / "scripts" / "train_prior.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, SCRIPT, "--config", "smoke", "--out", str(out), "--steps", str(STEPS),
            "--device", "cpu", "--no-progress", *extra]


def latest_step(run: Path) -> int:
    ckpt = latest_checkpoint(run)
    return -1 if ckpt is None else int(ckpt.name.removeprefix("step_"))


def assert_run_intact(run: Path) -> None:
    """Every visible checkpoint folder is complete and the latest one loads (checksum verified)."""
    for folder in (run / "checkpoints").glob("step_*"):
        assert {p.name for p in folder.iterdir()} == {"weights.safetensors", "metadata.json", "training_state.pt"}
    prior = scoremed.load_prior(run)
    assert all(torch.isfinite(p).all() for p in prior.network.parameters())


def kill_at_random_moment(cmd: list[str], run: Path, rng: random.Random, log: list[str]) -> bool:
    """Start ``cmd``; once it has written a new checkpoint, SIGKILL it after a random delay.

    Returns False if the process finished before it could be killed.
    """
    before = latest_step(run)
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while latest_step(run) <= before and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        delay = rng.uniform(0.0, 0.4)
        time.sleep(delay)
        if proc.poll() is not None:
            log.append(f"finished before the kill (delay {delay:.2f} s)")
            return False
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        log.append(f"killed {delay:.2f} s after step {latest_step(run)} was saved")
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_reaches_the_uninterrupted_weights(tmp_path):
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight = subprocess.Popen(train_cmd(straight_dir), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rng, log = random.Random(int(time.time())), []
    kills = 0
    cmd = train_cmd(killed_dir)
    for _ in range(KILLS):
        kills += kill_at_random_moment(cmd, killed_dir, rng, log)
        assert_run_intact(killed_dir)
        cmd = train_cmd(killed_dir, "--resume")
    assert kills >= 1, log
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stderr
    _, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err

    assert_run_intact(killed_dir)
    assert not list((killed_dir / "checkpoints").glob(".tmp_*"))
    print("SIGKILL log:", "; ".join(log))
    a = load_file(str(latest_checkpoint(straight_dir) / "weights.safetensors"))
    b = load_file(str(latest_checkpoint(killed_dir) / "weights.safetensors"))
    assert latest_checkpoint(killed_dir).name == f"step_{STEPS:08d}" and a.keys() == b.keys()
    for key in a:  # model.* and ema.*
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6, msg=lambda m: f"{key}: {m} ({log})")


SAVER = """
import sys, torch
from scoremed.io.checkpoint import save_training_checkpoint
run, step = sys.argv[1], int(sys.argv[2])
net, ema = torch.nn.Linear(64, 64), torch.nn.Linear(64, 64)
print("ready", flush=True)
while True:
    step += 1
    with torch.no_grad():
        net.weight.fill_(step)
        ema.weight.fill_(-step)
    save_training_checkpoint(run, step, net, ema, {"format_version": 1}, {"step": torch.tensor(step)}, keep=2)
"""


def check_saved_run(run: Path) -> int:
    """Every visible checkpoint is complete and self-consistent; returns the latest step."""
    from scoremed.io.checkpoint import file_sha256, read_json, read_training_state

    for folder in (run / "checkpoints").glob("step_*"):
        step = int(folder.name.removeprefix("step_"))
        meta = read_json(folder / "metadata.json")
        assert meta["step"] == step and file_sha256(folder / "weights.safetensors") == meta["weights_sha256"]
        weights = load_file(str(folder / "weights.safetensors"))
        assert bool((weights["model.weight"] == step).all()) and bool((weights["ema.weight"] == -step).all())
        state = read_training_state(folder / "training_state.pt", sha256=meta["training_state_sha256"])
        assert int(state["step"]) == step
    return latest_step(run)


def test_sigkill_while_saving_checkpoints_never_leaves_a_partial_one(tmp_path):
    """A process that does nothing but save checkpoints is killed at random moments: most kills
    land inside a save. Every visible checkpoint stays complete and consistent."""
    rng, run, in_save, step = random.Random(), tmp_path / "run", 0, 0
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(run), str(step)], env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(rng.uniform(0.2, 0.8))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        in_save += bool(list((run / "checkpoints").glob(".tmp_*")) or list(run.glob(".latest.tmp*")))
        step = check_saved_run(run)
        assert step > 0
    net = torch.nn.Linear(64, 64)
    save_training_checkpoint(run, step + 1, net, net.__class__(64, 64), {}, {})   # the next save cleans up
    assert not list((run / "checkpoints").glob(".tmp_*")) and not list(run.glob(".latest.tmp*"))
    print(f"SIGKILL while saving: {in_save} of 3 kills left temporaries (landed inside a save)")


def test_a_save_that_fails_half_way_keeps_the_previous_checkpoint(tmp_path, monkeypatch, smoke_prior):
    net, ema = smoke_prior.network, copy.deepcopy(smoke_prior.network)
    meta = {"format_version": 1}
    save_training_checkpoint(tmp_path, 10, net, ema, meta, {"step": 10})

    def broken_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_training_checkpoint(tmp_path, 20, net, ema, meta, {"step": 20})
    assert latest_checkpoint(tmp_path).name == "step_00000010"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000010"]


def test_a_prior_file_pair_is_replaced_atomically(tmp_path, monkeypatch, smoke_prior):
    arch = smoke_prior.metadata["architecture"]
    save_prior(tmp_path / "p", smoke_prior, arch)
    before = (tmp_path / "p.safetensors").read_bytes()

    import scoremed.io.checkpoint as ckpt

    def broken(tensors, path, *args, **kwargs):
        Path(path).write_bytes(b"\x00" * 10)
        raise OSError("killed")

    monkeypatch.setattr(ckpt, "save_file", broken)
    with pytest.raises(OSError):
        save_prior(tmp_path / "p", smoke_prior, arch)
    assert (tmp_path / "p.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.safetensors"]
    scoremed.load_prior(tmp_path / "p.safetensors")


def test_atomic_write_leaves_the_target_untouched_on_failure(tmp_path):
    target = tmp_path / "out.nii.gz"
    target.write_bytes(b"old")

    def fail(path: Path):
        path.write_bytes(b"half written")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.nii.gz"]

"""``scoremed reconstruct`` under torchrun (CPU, gloo, 2 processes, the tiny smoke prior): the batches of
slices of a volume are shared over the ranks and the outputs equal those of a single process;
only rank 0 prints and writes. Also its sampler / speed flags."""
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from scoremed.cli.common import run_cli
from scoremed.cli.reconstruct import main

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")

COMMAND = ["-m", "scoremed", "reconstruct"]   # torchrun -m: the installed package, from any folder


def torchrun(args, cwd, nproc=2, timeout=240):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def single(args) -> None:
    assert run_cli(main, args) == 0


@pytest.fixture
def volume(tmp_path):
    """A 16 x 16 x 6 NIfTI volume (smooth pattern + noise, anisotropic voxels)."""
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 16)
    data = (np.sin(6 * x)[:, None, None] * np.cos(4 * x)[None, :, None] + 0.1 * np.arange(6)[None, None, :]
            + 0.05 * rng.standard_normal((16, 16, 6))).astype(np.float32)
    path = tmp_path / "vol.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.2, 2.0, 1.0])), path)
    return path


def without_seconds(value):
    """metrics.json without the timings (compute time differs from run to run)."""
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [without_seconds(v) for v in value]
    return value


@pytest.mark.slow
def test_distributed_reconstruction_output_equals_the_single_process_one(tmp_path, smoke_run, volume):
    # --batch-size 2: three batches of two slices, so both ranks work (rank 0: batches 0-1, rank 1: batch 2)
    common = ["--input", str(volume), "--prior", str(smoke_run), "--steps", "3", "--batch-size", "2",
              "--device", "cpu", "--no-progress"]
    done = torchrun([*COMMAND, *common, "--out", str(tmp_path / "A")], cwd=tmp_path)
    assert "3 batch(es) of slices shared over 2 processes: rank 0: batches 0-1, rank 1: batch 2" in done.stderr
    assert done.stdout.count("scoremed (consistency)") == 1          # the table, printed by rank 0 only
    single([*common, "--out", str(tmp_path / "B")])

    a, b = tmp_path / "A", tmp_path / "B"
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir()) == \
        ["figure.png", "metrics.json", "reconstruction.nii.gz"]
    na, nb = nib.load(a / "reconstruction.nii.gz"), nib.load(b / "reconstruction.nii.gz")
    assert na.shape == nb.shape == (16, 16, 6)
    np.testing.assert_array_equal(na.affine, nb.affine)
    np.testing.assert_allclose(np.asarray(na.dataobj), np.asarray(nb.dataobj), rtol=0, atol=1e-5)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert without_seconds(ma) == without_seconds(mb)
    assert len(ma["scoremed"]["per_slice"]) == 6


@pytest.mark.slow
def test_one_image_under_torchrun_is_reconstructed_by_rank_0_alone(tmp_path, smoke_run):
    image = tmp_path / "image.npy"
    np.save(image, np.random.default_rng(1).random((16, 16)).astype(np.float32))
    done = torchrun([*COMMAND, "--input", str(image), "--prior", str(smoke_run), "--steps", "2", "--device", "cpu",
                     "--no-progress", "--no-extra-baselines", "--out", str(tmp_path / "out")], cwd=tmp_path)
    assert "nothing to share out over 2 processes" in done.stderr
    assert done.stdout.count("scoremed (consistency)") == 1
    assert (tmp_path / "out" / "reconstruction.nii.gz").is_file()


def test_sampler_and_speed_flags_reach_the_solver(tmp_path, smoke_run, volume, capsys):
    common = ["--input", str(volume), "--prior", str(smoke_run), "--steps", "3", "--device", "cpu", "--no-progress"]
    single([*common, "--out", str(tmp_path / "noise")])
    single([*common, "--out", str(tmp_path / "direct"), "--start", "direct", "--t-start", "0.3",
            "--predictor", "ddim", "--corrector", "none", "--precision", "fp32"])
    noise, direct = (np.asarray(nib.load(tmp_path / d / "reconstruction.nii.gz").dataobj) for d in ("noise", "direct"))
    assert np.isfinite(direct).all() and np.abs(noise - direct).max() > 1e-3
    capsys.readouterr()
    assert run_cli(main, [*common, "--out", str(tmp_path / "bad"), "--start", "direct", "--t-start", "3"]) == 2
    assert "--t-start" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()

"""End-to-end runs of the scripts/ shims at tiny sizes with the smoke prior."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]   # the checkout (scripts/)


def run(script, *args, timeout=300):
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("op,extra", [("mri", ["--accel", "2", "--center-fraction", "0.25"]), ("ct", ["--views", "12"]),
                                      ("inpaint", ["--mask-kind", "random"])])
def test_reconstruct_from_an_image_file_writes_outputs_and_metrics(smoke_run, tmp_path, op, extra):
    image = tmp_path / "phantom.npy"
    yy, xx = np.mgrid[-1:1:16j, -1:1:16j]
    np.save(image, ((xx ** 2 + yy ** 2) < 0.5).astype(np.float32) * 0.8 + 0.1)
    out = tmp_path / "out"
    done = run("reconstruct.py", "--op", op, *extra, "--input", image, "--prior", smoke_run, "--steps", "5",
               "--samples", "2", "--out", out, "--no-progress")
    assert done.returncode == 0, done.stderr
    for name in ("direct", "classical", "scoremed"):
        assert name in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"direct", "classical", "scoremed"}
    assert all({"psnr", "ssim", "seconds"} <= set(m) for m in metrics.values())
    produced = {p.name for p in out.iterdir()}
    assert {"figure.png", "metrics.json"} <= produced
    assert "reconstruction.nii.gz" in produced or "reconstruction.png" in produced


def test_reconstruct_bad_op_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    done = run("reconstruct.py", "--op", "pet", "--out", out)
    assert done.returncode == 2 and "--op" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_sample_and_likelihood_scripts(smoke_run, tmp_path):
    done = run("sample.py", "--prior", smoke_run, "-n", "4", "--steps", "10", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    samples = np.load(tmp_path / "samples.npy")
    assert samples.shape == (4, 1, 16, 16) and np.isfinite(samples).all()
    done = run("likelihood.py", "--prior", smoke_run, tmp_path / "samples.png")
    assert done.returncode == 0, done.stderr
    assert "bits/dim" in done.stdout

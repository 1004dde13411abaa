"""End-to-end command-line runs at tiny sizes with the smoke prior: in-process through each command's
``main`` (what the ``scoremed`` script and the shims call), and once through a ``scripts/`` shim."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scoremed.cli import likelihood, reconstruct, sample
from scoremed.cli.common import run_cli

REPO_ROOT = Path(__file__).resolve().parents[2]   # the checkout (scripts/)


def disk_image(folder: Path) -> Path:
    image = folder / "phantom.npy"
    yy, xx = np.mgrid[-1:1:16j, -1:1:16j]
    np.save(image, ((xx ** 2 + yy ** 2) < 0.5).astype(np.float32) * 0.8 + 0.1)
    return image


@pytest.mark.parametrize("op,extra", [("mri", ["--accel", "2", "--center-fraction", "0.25"]), ("ct", ["--views", "12"]),
                                      ("inpaint", ["--mask-kind", "random"])])
def test_reconstruct_from_an_image_file_writes_outputs_and_metrics(smoke_run, tmp_path, op, extra, capsys):
    out = tmp_path / "out"
    code = run_cli(reconstruct.main, ["--op", op, *extra, "--input", str(disk_image(tmp_path)), "--prior",
                                      str(smoke_run), "--steps", "5", "--samples", "2", "--out", str(out),
                                      "--no-progress", "--no-extra-baselines"])
    stdout = capsys.readouterr().out
    assert code == 0
    for name in ("direct", "classical", "scoremed"):
        assert name in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"direct", "classical", "scoremed"}
    assert all({"psnr", "ssim", "seconds"} <= set(m) for m in metrics.values())
    produced = {p.name for p in out.iterdir()}
    assert {"figure.png", "metrics.json", "std.npy"} <= produced
    assert ("reconstruction.nii.gz" if op in ("mri", "ct") else "reconstruction.png") in produced


def test_one_image_gets_a_pnp_bm3d_row_when_bm3d_is_installed_and_a_note_when_not(smoke_run, tmp_path, capsys,
                                                                                  monkeypatch, caplog):
    import logging

    import scoremed.tasks
    from scoremed.denoising import bm3d_available

    argv = ["--op", "mri", "--accel", "2", "--input", str(disk_image(tmp_path)), "--prior", str(smoke_run),
            "--steps", "2", "--no-progress"]
    if bm3d_available():
        assert run_cli(reconstruct.main, [*argv, "--out", str(tmp_path / "with")]) == 0
        assert "PnP-BM3D (ADMM)" in capsys.readouterr().out
        metrics = json.loads((tmp_path / "with" / "metrics.json").read_text())
        assert list(metrics) == ["direct", "classical", "pnp-bm3d", "scoremed"]
        assert metrics["pnp-bm3d"]["psnr"] > metrics["direct"]["psnr"]
    caplog.set_level(logging.INFO, logger="scoremed")
    monkeypatch.setitem(sys.modules, "bm3d", None)                 # as if bm3d were not installed
    monkeypatch.setattr(scoremed.tasks, "_NOTED", set())
    assert run_cli(reconstruct.main, [*argv, "--out", str(tmp_path / "without")]) == 0
    assert set(json.loads((tmp_path / "without" / "metrics.json").read_text())) == {"direct", "classical", "scoremed"}
    assert "PnP-BM3D (ADMM): skipped, it needs the optional bm3d package (pip install 'scoremed[bm3d]')" in caplog.text


def test_the_script_shim_runs_the_command_and_bad_input_exits_2_writing_nothing(smoke_run, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "reconstruct.py"), "--op", "pet", "--out", out],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("error: --op: expected one of")
    assert "Traceback" not in done.stderr and not out.exists()


def test_sample_and_likelihood(smoke_run, tmp_path, capsys):
    assert run_cli(sample.main, ["--prior", str(smoke_run), "-n", "4", "--steps", "10", "--out", str(tmp_path)]) == 0
    samples = np.load(tmp_path / "samples.npy")
    assert samples.shape == (4, 1, 16, 16) and np.isfinite(samples).all()
    assert (tmp_path / "samples.png").is_file()
    capsys.readouterr()
    assert run_cli(likelihood.main, ["--prior", str(smoke_run), str(tmp_path / "samples.png")]) == 0
    assert "bits/dim" in capsys.readouterr().out

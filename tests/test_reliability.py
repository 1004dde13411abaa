"""Reliability and security (issue 8): nothing is unpickled, corrupt checkpoints are refused with
a list of what differs, every public entry point names the bad argument, divergence names the step."""
from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import scoremed
from scoremed.io.checkpoint import read_training_state
from scoremed.priors import save_prior
from scoremed.cli.common import run_cli
from scoremed.errors import InputError, SamplingDiverged
from scoremed.operators import CT, MRI, Grayscale, Inpainting, cartesian_mask, random_pixel_mask, sparse_view_angles
from scoremed.networks.published import import_checkpoint, published_configs
from conftest import smooth_gaussian

REPO_ROOT = Path(__file__).resolve().parents[1]   # the checkout (scripts/, configs/)

H = 8


# --- helpers ------------------------------------------------------------------------
class Payload:
    """Unpickling this creates ``marker`` (standing in for arbitrary code)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_payloads(folder: Path) -> list[Path]:
    """A raw pickle and a torch.save zip archive that both run code when unpickled."""
    marker = folder / "PWNED"
    raw = folder / "raw.pth"
    raw.write_bytes(pickle.dumps({"model": Payload(marker)}, protocol=2))
    zipped = folder / "zipped.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "ema": Payload(marker), "step": 3}, zipped)
    return [raw, zipped]


@pytest.fixture
def prior_pair(tmp_path, smoke_prior):
    """A small network prior written as NAME.safetensors + NAME.json; returns the weights path."""
    return save_prior(tmp_path / "tiny", smoke_prior, smoke_prior.metadata["architecture"])


def gaussian():
    mean, cov = smooth_gaussian(H)
    return scoremed.gaussian_prior(scoremed.VESDE(sigma_max=5.0), mean, cov, (1, H, H))


# --- nothing is ever unpickled ------------------------------------------------------
def test_pickle_payloads_are_refused_and_run_nothing(tmp_path):
    payloads = pickle_payloads(tmp_path)
    marker = tmp_path / "PWNED"
    config = published_configs()[0]
    for path in payloads:
        with pytest.raises(InputError, match="pickle"):
            scoremed.load_prior(path)
        with pytest.raises(InputError, match="weights_only"):
            import_checkpoint(path, config)
        with pytest.raises(InputError, match="pickle-free"):
            read_training_state(path)
        disguised = path.with_suffix(".safetensors")           # renamed so the suffix check cannot catch it
        disguised.write_bytes(path.read_bytes())
        disguised.with_suffix(".json").write_text(json.dumps({"format_version": 1}))
        with pytest.raises(InputError, match="safetensors"):
            scoremed.load_prior(disguised)
    assert not marker.exists()


def test_resume_from_a_run_with_a_pickle_payload_runs_nothing(tmp_path, smoke_run):
    import shutil

    from scoremed.io.checkpoint import latest_checkpoint
    from scoremed.training.config import load_config
    from scoremed.training import Trainer
    from scoremed.data import training_dataset

    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    marker = tmp_path / "PWNED"
    torch.save({"optimizer": Payload(marker), "step": 60}, latest_checkpoint(run) / "training_state.pt")
    config = load_config(REPO_ROOT / "configs" / "smoke.yaml")
    with pytest.raises((InputError, pickle.UnpicklingError)):
        Trainer(config, training_dataset(config), run, device="cpu", resume=True, progress=False)
    assert not marker.exists()


# --- checkpoints that do not match ---------------------------------------------------
def rewrite_meta(weights: Path, change) -> None:
    meta_path = weights.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("change, expected", [
    (lambda m: m.update(format_version=2), "format_version 2; this scoremed reads 1"),
    (lambda m: m.update(format_version="1"), "format_version '1'"),
    (lambda m: m.pop("architecture"), r"lacks \['architecture'\]"),
    (lambda m: m.update(sde=[1, 2]), "sde: expected a mapping"),
    (lambda m: m["sde"].update(sigma_max="big"), "sde: expected numbers"),
    (lambda m: m["sde"].update(kind="brownian"), "sde.kind"),
    (lambda m: m["sde"].update(foo=1), "'sde'.*foo"),
    (lambda m: m.update(architecture="unet"), "architecture: expected a mapping"),
    (lambda m: m["architecture"].update(channels=[8, 8, 8]), "architecture"),
    (lambda m: m["architecture"].update(name="resnet"), "architecture.name"),
    (lambda m: m.update(image_shape="16x16"), "image_shape"),
    (lambda m: m.update(image_shape=[3, 16, 16]), r"image_shape: \[3, 16, 16\] has 3 channel"),
    (lambda m: m.update(image_shape=[1, 0, 16]), "image_shape"),
    (lambda m: m.update(centered="no"), "centered"),
    (lambda m: m.update(solve_defaults={"consistency": 5}), "solve_defaults"),
    (lambda m: m.update(name=5), "name"),
    (lambda m: m.update(weights_sha256="0" * 64), "weights_sha256"),
    (lambda m: m.update(weights_sha256=7), "weights_sha256"),
])
def test_metadata_that_does_not_fit_is_refused_naming_the_field(prior_pair, change, expected):
    rewrite_meta(prior_pair, change)
    with pytest.raises(InputError, match=expected):
        scoremed.load_prior(prior_pair)


def test_weights_that_differ_from_the_architecture_are_listed(prior_pair):
    tensors = load_file(str(prior_pair))
    first, second = sorted(tensors)[:2]
    changed = {k: v for k, v in tensors.items() if k != first}
    changed["stray.weight"] = torch.zeros(1)
    changed[second] = torch.zeros(3)
    save_file(changed, str(prior_pair))
    rewrite_meta(prior_pair, lambda m: m.pop("weights_sha256"))
    with pytest.raises(InputError) as info:
        scoremed.load_prior(prior_pair)
    message = str(info.value)
    assert f"missing keys (1): {first}" in message
    assert "unexpected keys (1): stray.weight" in message
    assert f"{second}: checkpoint (3,)" in message

    save_file({k: (v * 0).long() if k == first else v for k, v in tensors.items()}, str(prior_pair))
    with pytest.raises(InputError, match=f"dtype differences \\(1\\): {first}: checkpoint torch.int64"):
        scoremed.load_prior(prior_pair)
    save_file({k: v * float("nan") if k == first else v for k, v in tensors.items()}, str(prior_pair))
    with pytest.raises(InputError, match=f"NaN/Inf \\(1\\): {first}"):
        scoremed.load_prior(prior_pair)


def test_a_flipped_bit_in_the_weights_is_caught_by_the_checksum(prior_pair):
    data = bytearray(prior_pair.read_bytes())
    data[-100] ^= 0x01                                   # inside the tensor data: still a valid file
    prior_pair.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match the sha256 recorded in its metadata"):
        scoremed.load_prior(prior_pair)


def test_a_flipped_byte_in_the_training_state_is_caught_by_its_checksum(tmp_path, smoke_run):
    from scoremed.io.checkpoint import latest_checkpoint, read_json

    ckpt = latest_checkpoint(smoke_run)
    expected = read_json(ckpt / "metadata.json")["training_state_sha256"]
    assert read_training_state(ckpt / "training_state.pt", sha256=expected)["step"] == 60
    data = bytearray((ckpt / "training_state.pt").read_bytes())
    data[len(data) // 2] ^= 0x01     # torch.load alone would not notice this
    copy_path = tmp_path / "training_state.pt"
    copy_path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match the sha256"):
        read_training_state(copy_path, sha256=expected)


def test_load_prior_arguments(tmp_path, prior_pair):
    for bad, expected in [(5, "prior: expected a shipped prior name"), ("a\0b", "NUL"),
                          ("no-such-prior", "expected a shipped prior name"),
                          (tmp_path, "folder without a scoremed checkpoint"),
                          (tmp_path / "x.ckpt", "pickle-based")]:
        with pytest.raises(InputError, match=expected):
            scoremed.load_prior(bad)
    prior_pair.with_suffix(".json").unlink()
    with pytest.raises(InputError, match="metadata file .* is missing"):
        scoremed.load_prior(prior_pair)
    with pytest.raises(InputError, match="device"):
        scoremed.load_prior("mri-brain", device="gpu")
    with pytest.raises(InputError, match="device: cuda"):
        if torch.cuda.is_available():
            pytest.skip("CUDA present")
        scoremed.load_prior("mri-brain", device="cuda")


# --- solve / sample_posterior: every argument is checked ------------------------------
def solve_case():
    op = Inpainting(random_pixel_mask((H, H), missing_fraction=0.5, seed=0))
    x = torch.rand(1, 1, H, H)
    return gaussian(), op, op(x)


BAD_SOLVE_ARGS = [
    ({"y": "int"}, "y: expected real measurement"),
    ({"y": "complex"}, "y: expected real measurement"),
    ({"y": "nan"}, "y: expected finite values"),
    ({"y": "inf"}, "y: expected finite values"),
    ({"y": "shape"}, "y: expected real measurement of shape"),
    ({"y": "empty"}, "y: expected a non-empty"),
    ({"y": "numpy"}, "y: expected a torch.Tensor"),
    ({"y": "meta"}, "y: expected a tensor with data"),
    ({"operator": None}, "operator: expected a scoremed operator"),
    ({"prior": "mri-brain"}, "prior: expected a scoremed.ScorePrior, got str; load one"),
    ({"prior": object()}, "prior: expected a scoremed.ScorePrior"),
    ({"method": "magic"}, "method: expected one of"),
    ({"method": 3}, "method: expected one of"),
    ({"steps": 0}, "steps: expected an integer >= 1"),
    ({"steps": 2.5}, "steps: expected an integer"),
    ({"steps": "10"}, "steps: expected an integer"),
    ({"steps": True}, "steps: expected an integer"),
    ({"lam": 1.5}, r"lam: expected a value in \[0.0, 1.0\]"),
    ({"lam": -0.1}, "lam"),
    ({"lam": float("nan")}, "lam: expected a finite number"),
    ({"snr": -1.0}, "snr"),
    ({"snr": float("inf")}, "snr: expected a finite number"),
    ({"zeta": -1.0, "method": "dps"}, "zeta"),
    ({"zeta": float("nan"), "method": "dps"}, "zeta"),
    ({"predictor": "rk4"}, "predictor: expected one of"),
    ({"predictor": ["reverse_diffusion"]}, "predictor: expected a name"),
    ({"corrector": "magic"}, "corrector: expected one of"),
    ({"n_samples": 0}, "n: expected an integer >= 1"),
    ({"n_samples": 1.5}, "n: expected an integer"),
    ({"batch_size": 0}, "batch_size"),
    ({"seed": "a"}, "seed: expected an integer"),
    ({"seed": -1}, "seed"),
    ({"device": "gpu"}, "device: expected a torch device"),
    ({"device": "meta"}, "device: expected cpu, cuda or mps"),
    ({"stepz": 10}, "stepz: not a setting of method 'consistency'"),
]


@pytest.mark.parametrize("change, expected", BAD_SOLVE_ARGS, ids=[str(c) for c, _ in BAD_SOLVE_ARGS])
def test_solve_names_the_bad_argument(change, expected):
    prior, op, y = solve_case()
    kwargs = {"prior": prior, "steps": 3, "progress": False}
    change = dict(change)
    bad_y = change.pop("y", None)
    y = {None: y, "int": y.long(), "complex": y.to(torch.complex64), "nan": y * float("nan"),
         "inf": y / 0.0 + 1, "shape": y[..., :4], "empty": y[:0], "numpy": y.numpy(), "meta": y.to("meta")}[bad_y]
    op = change.pop("operator", op)
    kwargs.update(change)
    with pytest.raises(InputError, match=expected):
        scoremed.solve(y, op, **kwargs)


def test_solve_checks_the_prior_stored_defaults_and_says_where_they_come_from():
    prior, op, y = solve_case()
    prior.solve_defaults = {"consistency": {"steps": "many"}}
    with pytest.raises(InputError, match="steps \\(stored in the solve_defaults of prior"):
        scoremed.solve(y, op, prior=prior, progress=False)


def test_a_measurement_far_outside_the_prior_intensity_range_is_refused(smoke_prior):
    x = torch.rand(1, *smoke_prior.image_shape)
    op = Inpainting(random_pixel_mask(smoke_prior.image_shape[-2:], missing_fraction=0.5, seed=0))
    y = op(x)
    scoremed.solve(y, op, prior=smoke_prior, steps=2, progress=False)          # [0, 1] data: accepted
    with pytest.raises(InputError, match=r"y: measurement 0 has norm .* intensities in \[0, 1\]"):
        scoremed.solve(y * 1000, op, prior=smoke_prior, steps=2, progress=False)  # e.g. raw scanner units


def test_y_on_another_device_than_the_operator_is_named():
    op = MRI(cartesian_mask((H, H), accel=2, seed=0)).to("meta")
    with pytest.raises(InputError, match="x: expected a tensor on the operator's device meta"):
        op(torch.rand(1, 1, H, H))


# --- divergence names the step --------------------------------------------------------
def exploding(after_t: float):
    base = gaussian()

    def score(x, t):
        return base.score(x, t) * (float("inf") if float(t[0]) < after_t else 1.0)

    return scoremed.ScorePrior(base.sde, score, base.image_shape)


def test_divergence_raises_with_the_step_number_instead_of_returning_garbage():
    _, op, y = solve_case()
    for method in ("consistency", "projection", "dps"):
        with pytest.raises(SamplingDiverged, match="non-finite values at step 6 of 10") as info:
            scoremed.solve(y, op, prior=exploding(0.4), method=method, steps=10, progress=False)
        assert info.value.step == 6 and isinstance(info.value, FloatingPointError)
    with pytest.raises(SamplingDiverged, match="step 6 of 10"):
        scoremed.sample(exploding(0.4), n=2, steps=10)
    with pytest.raises(SamplingDiverged, match="probability-flow ODE"):
        scoremed.sample(exploding(0.4), n=2, method="ode")


def test_sample_names_the_bad_argument():
    prior = gaussian()
    for kwargs, expected in [({"n": 0}, "n: expected an integer >= 1"), ({"n": 2.0}, "n: expected an integer"),
                             ({"steps": 0}, "steps"), ({"method": "sde"}, "method"),
                             ({"snr": float("nan")}, "snr"), ({"batch_size": -1}, "batch_size"),
                             ({"rtol": -1.0, "method": "ode"}, "rtol"), ({"device": "tpu"}, "device"),
                             ({"seed": 1.5}, "seed"), ({"predictor": "magic"}, "predictor")]:
        with pytest.raises(InputError, match=expected):
            scoremed.sample(prior, **{"steps": 2, **kwargs})
    with pytest.raises(InputError, match="prior: expected a scoremed.ScorePrior"):
        scoremed.sample("natural", n=1)


# --- operators -------------------------------------------------------------------------
OPERATORS = {
    "inpainting": lambda: Inpainting(random_pixel_mask((H, H), missing_fraction=0.5, seed=0)),
    "mri": lambda: MRI(cartesian_mask((H, H), accel=2, seed=0)),
    "grayscale": Grayscale,
    "ct": lambda: CT(H, sparse_view_angles(4, n_full=12)),
}


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operators_name_the_bad_argument(name):
    op = OPERATORS[name]()
    channels = 3 if name == "grayscale" else 1
    x = torch.rand(2, channels, H, H)
    y = op(x)
    for bad, expected in [(x.long(), "x: expected real image"), (x > 0.5, "x: expected real image"),
                          (x[0], "x: expected real image of shape"), (x.numpy(), "x: expected a torch.Tensor"),
                          (x.to("meta"), "x: expected a tensor with data")]:
        with pytest.raises(InputError, match=expected):
            op(bad)
        with pytest.raises(InputError, match=expected):
            op.check_image(bad)
    for method in (op.adjoint, op.pseudo_inverse):
        with pytest.raises(InputError, match="y: expected"):
            method(y[0])
    with pytest.raises(InputError, match="y: expected finite values"):
        op.pseudo_inverse(y * float("nan"))
    with pytest.raises(InputError, match="y: expected finite values"):
        op.check_measurement(y / 0.0)


def test_operator_constructors_check_their_arguments():
    for make, expected in [(lambda: Inpainting(torch.ones(0, 0)), "mask: expected a non-empty"),
                           (lambda: Inpainting(torch.full((H, H), 0.5)), "mask: expected only 0/1"),
                           (lambda: Inpainting(torch.ones(H)), "mask: expected shape"),
                           (lambda: MRI(torch.full((H, H), float("nan"))), "mask"),
                           (lambda: cartesian_mask((H, H), accel=0.5), "accel"),
                           (lambda: cartesian_mask((-1, H), accel=2), "shape"),
                           (lambda: CT(1, sparse_view_angles(4)), "image_size"),
                           (lambda: CT(H, torch.tensor([float("nan")])), "angles"),
                           (lambda: sparse_view_angles(0), "n_views")]:
        with pytest.raises(InputError, match=expected):
            make()


# --- command-line tools ------------------------------------------------------------------
def test_reconstruct_cli_bad_input_gives_one_error_line_and_writes_nothing(tmp_path, capsys):
    from scoremed.cli import reconstruct

    garbage = tmp_path / "scan.png"
    garbage.write_bytes(os.urandom(300))
    nan_kspace = tmp_path / "k.npy"
    np.save(nan_kspace, np.full((64, 64), np.nan, dtype=np.complex64))
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    payload = pickle_payloads(tmp_path)[0]
    out = tmp_path / "out"
    cases = [(["--input", str(garbage)], "--input"), (["--kspace", str(nan_kspace)], "--kspace: contains NaN"),
             (["--kspace", str(pickled)], "--kspace"), (["--prior", str(payload)], "pickle"),
             (["--device", "cuda:7"], "--device"), (["--op", "pet"], "--op"), (["--samples", "0"], "--samples")]
    for argv, expected in cases:
        code = run_cli(reconstruct.main, ["--op", "mri", *argv, "--out", str(out), "--no-progress"]
                       if "--op" not in argv else [*argv, "--out", str(out)])
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
        assert code == 2, argv
        assert len(err) == 1 and expected in err[0], (argv, err)
        assert not out.exists()
    assert not (tmp_path / "PWNED").exists()


def test_train_cli_rejects_bad_config_files_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"training: {steps: [\x00\xff")
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "train_prior.py"), "--config", str(bad),
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2 and "error: config" in done.stderr
    assert not (tmp_path / "run").exists()

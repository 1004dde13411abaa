"""The ``scoremed`` command: help lists every command on one line, ``python -m scoremed`` dispatches,
bad input exits 2 with one line, library argument names become flags in CLI errors."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from scoremed.cli import COMMANDS, main
from scoremed.cli.common import flags_in_errors, run_cli
from scoremed.errors import InputError


def test_help_lists_every_command_with_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (_module, description) in COMMANDS.items():
        assert f"  {name:<12} {description}\n" in out
    assert set(COMMANDS) == {"train", "reconstruct", "sample", "likelihood", "export", "convert", "tune", "benchmark"}


def test_python_dash_m_dispatches_to_the_command(capsys):
    done = subprocess.run([sys.executable, "-m", "scoremed", "sample", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: scoremed sample")
    with pytest.raises(SystemExit) as exit_:
        main(["segment"])
    assert exit_.value.code == 2 and "invalid choice: 'segment'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_a_parser(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"usage: scoremed {name}")


def test_library_argument_names_become_flags_and_exit_2(capsys):
    p = argparse.ArgumentParser()
    p.add_argument("--kspace-mask")
    p.add_argument("--seed")

    def failing(message):
        def run(argv):
            with flags_in_errors(p):
                raise InputError(message)
        return run

    assert run_cli(failing("kspace_mask: the mask samples nothing")) == 2
    assert capsys.readouterr().err == "error: --kspace-mask: the mask samples nothing\n"
    assert run_cli(failing("operator (x.h5): bad")) == 2          # not an option: unchanged
    assert capsys.readouterr().err == "error: operator (x.h5): bad\n"


def test_export_keeps_the_measured_choices_and_the_facts_of_the_prior_it_replaces(tmp_path, smoke_run):
    import json

    import scoremed

    out = tmp_path / "priors"
    assert main(["export", str(smoke_run), "--name", "p", "--out-dir", str(out)]) == 0
    meta = json.loads((out / "p.json").read_text())
    assert "default_method" not in meta and meta["training"]["command"].endswith(f"--steps {meta['training']['step']}")
    tuning_task = {"task": "mri", "options": {"accel": 4}, "label": "mri-4x"}
    meta.update(default_method="dds", solve_defaults={"dds": {"steps": 30}}, calibration={"dds": {"std_scale": 2.0}},
                tuning_task=tuning_task)
    (out / "p.json").write_text(json.dumps(meta))
    assert main(["export", str(smoke_run), "--name", "p", "--out-dir", str(out)]) == 0
    again = json.loads((out / "p.json").read_text())
    assert again["default_method"] == "dds" and again["calibration"] == {"dds": {"std_scale": 2.0}}
    assert scoremed.load_prior(out / "p.safetensors").solve_defaults == {"dds": {"steps": 30}}
    assert main(["export", str(smoke_run), "--name", "p", "--out-dir", str(out), "--fresh"]) == 0
    fresh = json.loads((out / "p.json").read_text())
    assert "default_method" not in fresh and fresh["tuning_task"] == tuning_task

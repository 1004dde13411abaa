"""Packaging: every source folder is a package setup.py's find_packages picks up (so a wheel has it),
and the configs, assets and operators ship inside the scoremed package."""
from __future__ import annotations

import importlib
from pathlib import Path

import scoremed

ROOT = Path(__file__).resolve().parents[1]      # the checkout: scoremed/, operators/, configs/


def test_every_folder_with_python_files_is_a_package():
    for top in ("scoremed", "operators", "configs"):
        for folder in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            if "__pycache__" not in folder.parts and any(folder.glob("*.py")):
                assert (folder / "__init__.py").is_file(), f"{folder} has modules but no __init__.py"


def test_configs_assets_and_operators_are_found_inside_the_package():
    package = Path(scoremed.__file__).parent
    assert (package / "assets" / "priors" / "mri-brain.safetensors").is_file()
    for name in ("scoremed.configs", "scoremed.operators", "scoremed.apps", "scoremed.tasks"):
        module = importlib.import_module(name)
        assert module.__file__ is not None, f"{name} is a namespace package: a wheel would not contain it"

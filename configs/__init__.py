"""Shipped YAML configs, installed as the package ``scoremed.configs`` (so a wheel has them).

One file per trainable prior (``smoke.yaml`` is a tiny one for tests) and ``published/``
for the architectures of published score_sde_pytorch checkpoints.
"""
from __future__ import annotations

from pathlib import Path

from scoremed.errors import InputError

#: the folder holding the shipped configs (inside the installed package)
CONFIG_DIR = Path(__file__).resolve().parent


def config_names() -> list[str]:
    """Names of the shipped training configs (``smoke``, ``mri-brain``, ...)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def find_config(name_or_path: str, argument: str = "config") -> Path:
    """A config file path, or the name of a shipped config (``smoke`` -> .../configs/smoke.yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    raise InputError(f"{argument}: no file {name_or_path!r} and no shipped config of that name; "
                     f"known: {config_names()}")

"""Shared CLI plumbing: error reporting with exit code 2, device and logging set-up."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable

import torch

from scoremed.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run ``main``; bad input becomes one ``error: ...`` line and exit code 2, not a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return main(argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def resolve_device(device: str | None) -> torch.device:
    """``None``/"auto" -> CUDA when available else CPU; an unavailable CUDA request is an InputError."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InputError(f"--device: expected cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device: {device} requested but CUDA is not available on this machine")
    return dev


def find_config(name_or_path: str) -> Path:
    """A config file path, or a config name in ``configs/`` (``smoke`` -> configs/smoke.yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise InputError(f"--config: no file {name_or_path!r} and no config of that name; known: {known}")

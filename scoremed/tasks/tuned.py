"""The tuned classical baselines: one small JSON table shipped with the package
(``scoremed/assets/baselines/classical.json``), written by ``scoremed tune --classical``.

Layout: ``{"tasks": {task: {"HxW": entry}}}``; an entry records the setting it was tuned on
(data set, task options, validation images), each baseline's tuned parameters and validation
PSNR / SSIM next to its untuned ones, and ``strongest``: the baseline with the best tuned
validation PSNR. A reconstruction at another size uses the entry of the nearest size (by
pixel count, on a log scale).
"""
from __future__ import annotations

import functools
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

from scoremed.errors import InputError


def table_path() -> Path:
    """The shipped table's path (writable in a source checkout or editable install)."""
    return Path(str(resources.files("scoremed").joinpath("assets", "baselines", "classical.json")))


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> dict[str, Any]:
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"classical table: cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(table, dict) or not isinstance(table.get("tasks", {}), dict):
        raise InputError(f"classical table: {path} is not a JSON object with a 'tasks' mapping")
    return table


def read_table(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The table at ``path`` (default: the shipped one); an empty table when the file does not exist."""
    path = Path(path) if path is not None else table_path()
    if not path.is_file():
        return {"tasks": {}}
    return _read(str(path), path.stat().st_mtime)


def size_key(size: tuple[int, int]) -> str:
    """The table key of an image size (H, W): ``"HxW"``."""
    return f"{int(size[0])}x{int(size[1])}"


def entry_for(task: str, size: tuple[int, int], path: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The entry of ``task`` tuned at the size nearest to ``size`` (H, W), or None if it was never tuned."""
    entries = read_table(path)["tasks"].get(task) or {}
    if not entries:
        return None

    def distance(key: str) -> float:
        h, w = (int(v) for v in key.split("x"))
        return abs(math.log((h * w) / (size[0] * size[1])))

    return entries[min(entries, key=distance)]


def write_entry(task: str, size: tuple[int, int], entry: dict[str, Any],
                path: str | os.PathLike | None = None) -> Path:
    """Store ``entry`` as the table's ``task`` / ``HxW`` entry (other entries are kept); returns the path."""
    from scoremed.io.atomic import atomic_write_text

    path = Path(path) if path is not None else table_path()
    table = json.loads(json.dumps(read_table(path)))   # a copy: the cached table stays as read
    table.setdefault("tasks", {}).setdefault(task, {})[size_key(size)] = entry
    atomic_write_text(path, json.dumps(table, indent=1) + "\n")
    return path

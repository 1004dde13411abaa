"""Priors by name: the shipped priors and their facts; loading, saving and converting priors.

:func:`load_prior` takes a shipped name (:func:`shipped_prior_names`: a ``NAME.safetensors`` +
``NAME.json`` pair in the package's ``assets/priors``), a ``.safetensors`` file or a training run
folder (the file format is :mod:`scoremed.io.checkpoint`).

A shipped prior's facts live once, in its JSON: ``default_method`` and ``solve_defaults``
(:mod:`scoremed.settings`), ``calibration`` (:mod:`scoremed.calibration`), ``curves``, and what
:class:`ShippedPrior` reads: ``tuning_task`` (``task``, ``options`` and ``label``: the task its
settings, calibration and curves are measured on) and ``real_images`` (the modality of the real
scans it is tested on, if any). A new shipped prior is its file pair with these keys and its
training config. Tuning code writes its results with :func:`update_metadata`, which keeps the other keys.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from scoremed.errors import InputError, check_device
from scoremed.io.atomic import atomic_write_text
from scoremed.io.checkpoint import (check_metadata, latest_checkpoint, load_weights_strict, prior_metadata, read_json,
                                    read_safetensors, write_prior_files)
from scoremed.networks import PatchScore, build_score_network
from scoremed.networks.published import import_checkpoint
from scoremed.prior import ScorePrior
from scoremed.sde import sde_from_config
from scoremed.tasks import get_task

SHIPPED_DIR = Path(__file__).parent / "assets" / "priors"


def shipped_prior_names() -> list[str]:
    """Names of the shipped priors, sorted."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.safetensors"))


def prior_path(name: str, directory: str | os.PathLike | None = None) -> Path:
    """The weights file ``name.safetensors`` of a prior file pair in ``directory`` (default: the shipped priors)."""
    return Path(directory if directory is not None else SHIPPED_DIR) / f"{name}.safetensors"


# --- the shipped priors' facts ------------------------------------------------------
@dataclass(frozen=True)
class ShippedPrior:
    """What the benchmarks and tuning need to know about a shipped prior (from its JSON)."""
    name: str
    task: str                  #: the task its settings, calibration and curves are tuned on, e.g. "mri"
    options: Any               #: that task's options, e.g. ``mri.Options(accel=4)``
    label: str                 #: the tuning task's name in benchmark tables and curve records, e.g. "mri-4x"
    real_images: str | None    #: modality of the real scans it is tested on ("mr", "ct"), or None


def shipped_metadata(name: str) -> dict[str, Any]:
    """The JSON metadata of shipped prior ``name``."""
    if name not in shipped_prior_names():
        raise InputError(f"prior: expected a shipped prior name {shipped_prior_names()}, got {name!r}")
    return read_json(prior_path(name).with_suffix(".json"))


def shipped_prior(name: str) -> ShippedPrior:
    """The facts of shipped prior ``name``."""
    meta = shipped_metadata(name)
    tuning = meta.get("tuning_task")
    if not (isinstance(tuning, dict) and isinstance(tuning.get("task"), str) and isinstance(tuning.get("label"), str)
            and isinstance(tuning.get("options", {}), dict)):
        raise InputError(f"prior: {prior_path(name).with_suffix('.json')} needs tuning_task {{task, options, label}}, got {tuning!r}")
    options = get_task(tuning["task"], "tuning_task.task").make_options(**tuning.get("options", {}))
    return ShippedPrior(name, tuning["task"], options, tuning["label"], meta.get("real_images"))


def shipped_priors() -> list[ShippedPrior]:
    """The facts of every shipped prior, in name order."""
    return [shipped_prior(name) for name in shipped_prior_names()]


def update_metadata(name: str, edit: Callable[[dict[str, Any]], None], directory: str | os.PathLike | None = None) -> Path:
    """Apply ``edit`` to the JSON metadata of prior ``name`` in ``directory`` (default: the shipped priors)
    and write it back atomically; every key ``edit`` leaves alone is kept. Returns the JSON path."""
    path = prior_path(name, directory).with_suffix(".json")
    meta = read_json(path)
    edit(meta)
    atomic_write_text(path, json.dumps(meta, indent=2))
    return path


# --- saving -------------------------------------------------------------------------
def save_prior(path: str | os.PathLike, prior: ScorePrior, architecture: dict[str, Any],
               extra_metadata: dict[str, Any] | None = None) -> Path:
    """Write ``path.safetensors`` and ``path.json`` for a network prior; returns the weights path."""
    if prior.network is None:
        raise InputError("prior: only a prior whose score is a torch module can be saved")
    network = prior.network.net if isinstance(prior.network, PatchScore) else prior.network
    meta = prior_metadata(prior, architecture, name=prior.name, **(extra_metadata or {}))
    return write_prior_files(path, network.state_dict(), meta)


def convert_checkpoint(checkpoint: str | os.PathLike, config: str | os.PathLike | dict[str, Any],
                       out: str | os.PathLike, *, ema: bool = True) -> Path:
    """Write a published score_sde_pytorch checkpoint (:func:`scoremed.networks.published.import_checkpoint`)
    as scoremed's ``out.safetensors`` + ``out.json`` (for :func:`load_prior`)."""
    prior = import_checkpoint(checkpoint, config, ema=ema)
    meta = prior.metadata
    extra = {"source": meta["source"], "reference_checkpoint": Path(meta["checkpoint"]).name,
             "step": meta["step"], "ema": ema, "sampling": meta["sampling"]}
    return save_prior(out, prior, meta["architecture"], extra_metadata=extra)


# --- loading ------------------------------------------------------------------------
def prior_from_parts(meta: dict[str, Any], weights: dict[str, torch.Tensor], where: Path, name: str,
                     device=None) -> ScorePrior:
    check_metadata(meta, where)
    sde_cfg = dict(meta["sde"])
    kind = sde_cfg.pop("kind")
    try:
        sde = sde_from_config(kind, **sde_cfg)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise InputError(f"checkpoint: {where} metadata 'sde' {meta['sde']} is invalid: {exc}") from None
    try:
        net = build_score_network(meta["architecture"], sde)
    except Exception as exc:  # noqa: BLE001 - backbone constructors raise anything on nonsense (ZeroDivisionError, ...)
        raise InputError(f"checkpoint: {where} metadata 'architecture' cannot be built: "
                         f"{type(exc).__name__}: {exc}") from None
    load_weights_strict(net, weights, str(where))
    net.eval().requires_grad_(False)
    arch = meta["architecture"]
    score = PatchScore(net, arch["patch_size"], mode=arch.get("patch_mode", "tiles"),
                       context=arch.get("patch_context", 0)) if arch.get("patch_size") else net
    prior = ScorePrior(sde, score, tuple(meta["image_shape"]), centered=meta.get("centered", False),
                       name=str(name), solve_defaults=meta.get("solve_defaults") or {}, metadata=meta)
    return prior.to(device)


def _resolve(name_or_path: str | os.PathLike) -> tuple[Path, Path, str]:
    """(weights file, metadata file, tensor-key prefix) for a shipped name, file or run dir."""
    text = str(name_or_path)
    if text in shipped_prior_names():
        return prior_path(text), prior_path(text).with_suffix(".json"), ""
    path = Path(text)
    if path.is_dir():
        ckpt = latest_checkpoint(path) or (path if (path / "metadata.json").is_file() else None)
        if ckpt is None:
            raise InputError(f"prior: {path} is a folder without a scoremed checkpoint (no latest / checkpoints/step_*)")
        return ckpt / "weights.safetensors", ckpt / "metadata.json", "ema."
    if path.suffix in (".safetensors", ".json") and path.with_suffix(".safetensors").is_file():
        return path.with_suffix(".safetensors"), path.with_suffix(".json"), ""
    if path.suffix in (".pt", ".pth", ".ckpt", ".pkl"):
        raise InputError(f"prior: {path} is a pickle-based checkpoint; scoremed never unpickles weights. "
                         "Convert a published score_sde_pytorch checkpoint with scripts/convert_checkpoint.py")
    raise InputError(f"prior: expected a shipped prior name {shipped_prior_names()}, a .safetensors "
                     f"checkpoint or a training run folder, got {text!r}")


def load_prior(name_or_path: str | os.PathLike, device: torch.device | str | None = None) -> ScorePrior:
    """Load a trained prior: a shipped name, a ``.safetensors`` file (with its ``.json``) or a run folder.

    From a training run the EMA weights of the latest checkpoint are used.
    """
    device = check_device(device)
    meta, weights, weights_path = read_prior_weights(name_or_path)
    return prior_from_parts(meta, weights, weights_path, meta.get("name", str(name_or_path)), device)


def read_prior_weights(name_or_path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    """(metadata, network weights, weights file) of a shipped name, ``.safetensors`` file or run folder.

    From a training run: the EMA weights of the latest checkpoint. Checksums are verified.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputError(f"prior: expected a shipped prior name or a checkpoint path, got {type(name_or_path).__name__}")
    if "\0" in str(name_or_path):
        raise InputError(f"prior: the path {str(name_or_path)!r} contains a NUL byte")
    weights_path, meta_path, prefix = _resolve(name_or_path)
    if not meta_path.is_file():
        raise InputError(f"prior: metadata file {meta_path} is missing next to {weights_path}")
    meta = read_json(meta_path)
    checksum = meta.get("weights_sha256")
    if checksum is not None and not (isinstance(checksum, str) and len(checksum) == 64):
        raise InputError(f"checkpoint: {meta_path} has an invalid weights_sha256 {checksum!r}")
    weights = read_safetensors(weights_path, checksum)
    if prefix:
        weights = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    return meta, weights, weights_path

"""Pickle-free checkpoints: safetensors weights + JSON metadata, written atomically.

Two layouts:
- a *prior file pair* ``NAME.safetensors`` + ``NAME.json`` (EMA weights only): what is
  shipped and what :func:`save_prior` writes;
- a *training run* directory ``run/checkpoints/step_XXXXXXXX/`` holding ``weights.safetensors``
  (keys ``model.*`` and ``ema.*``), ``metadata.json`` and ``training_state.pt`` (optimiser
  and RNG state, read back with ``torch.load(weights_only=True)`` only), plus ``run/latest``
  naming the newest complete checkpoint.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from scoremed.errors import InputError
from scoremed.io_atomic import atomic_write, atomic_write_text
from scoremed.network import build_score_network
from scoremed.prior import ScorePrior
from scoremed.sde import sde_from_config

FORMAT_VERSION = 1
SHIPPED_DIR = Path(__file__).parent / "assets" / "priors"


def shipped_prior_names() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.safetensors"))


# --- writing ------------------------------------------------------------------------
def prior_metadata(prior: ScorePrior, architecture: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The JSON metadata describing a network prior."""
    return {"format_version": FORMAT_VERSION, "kind": "scoremed-prior", "sde": prior.sde.config(),
            "architecture": architecture, "image_shape": list(prior.image_shape), "centered": prior.centered,
            "intensity": "data in [0, 1]; model space 2x-1" if prior.centered else "data in [0, 1]",
            "solve_defaults": prior.solve_defaults, **extra}


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def save_prior(path: str | os.PathLike, prior: ScorePrior, architecture: dict[str, Any],
               extra_metadata: dict[str, Any] | None = None) -> Path:
    """Write ``path.safetensors`` and ``path.json`` for a network prior; returns the weights path."""
    if prior.network is None:
        raise InputError("prior: only a prior whose score is a torch module can be saved")
    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".safetensors", ".json") else base
    weights = _contiguous(prior.network.state_dict())
    meta = prior_metadata(prior, architecture, name=prior.name, **(extra_metadata or {}))
    atomic_write(base.with_suffix(".safetensors"), lambda p: save_file(weights, str(p)))
    atomic_write_text(base.with_suffix(".json"), json.dumps(meta, indent=2, default=str))
    return base.with_suffix(".safetensors")


def save_training_checkpoint(run_dir: str | os.PathLike, step: int, model: torch.nn.Module,
                             ema: torch.nn.Module, metadata: dict[str, Any],
                             training_state: dict[str, Any], keep: int = 2) -> Path:
    """Write one complete checkpoint folder atomically (temp folder + rename) and point ``latest`` at it."""
    run_dir = Path(run_dir)
    ckpt_root = run_dir / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp_step_", dir=ckpt_root))
    try:
        tensors = {f"model.{k}": v for k, v in _contiguous(model.state_dict()).items()}
        tensors.update({f"ema.{k}": v for k, v in _contiguous(ema.state_dict()).items()})
        save_file(tensors, str(tmp / "weights.safetensors"))
        (tmp / "metadata.json").write_text(json.dumps({**metadata, "step": step}, indent=2, default=str))
        torch.save(training_state, tmp / "training_state.pt")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_text(run_dir / "latest", final.name + "\n")
    for old in sorted(ckpt_root.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


# --- reading ------------------------------------------------------------------------
def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a training run, or None."""
    run_dir = Path(run_dir)
    pointer = run_dir / "latest"
    if pointer.is_file():
        candidate = run_dir / "checkpoints" / pointer.read_text().strip()
        if (candidate / "metadata.json").is_file():
            return candidate
    found = sorted(p for p in (run_dir / "checkpoints").glob("step_*") if (p / "metadata.json").is_file())
    return found[-1] if found else None


def read_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"checkpoint: cannot read metadata {path}: {exc}") from None
    if not isinstance(meta, dict):
        raise InputError(f"checkpoint: metadata {path} is not a JSON object")
    return meta


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (OSError, SafetensorError, ValueError) as exc:
        raise InputError(f"checkpoint: {path} is not a readable safetensors file ({exc})") from None


def check_metadata(meta: dict[str, Any], where: Path) -> None:
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise InputError(f"checkpoint: {where} has format_version {version!r}; this scoremed reads {FORMAT_VERSION}")
    missing = [k for k in ("sde", "architecture", "image_shape") if k not in meta]
    if missing:
        raise InputError(f"checkpoint: {where} metadata lacks {missing}")


def load_weights_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``module``; on any mismatch raise InputError listing what differs."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape differences", shapes)):
            if items:
                parts.append(f"{label} ({len(items)}): " + ", ".join(items[:10]) + (" ..." if len(items) > 10 else ""))
        raise InputError(f"checkpoint: {where} does not match the architecture — " + "; ".join(parts))
    module.load_state_dict(state)


def prior_from_parts(meta: dict[str, Any], weights: dict[str, torch.Tensor], where: Path, name: str,
                     device=None) -> ScorePrior:
    check_metadata(meta, where)
    sde_cfg = dict(meta["sde"])
    sde = sde_from_config(sde_cfg.pop("kind"), **sde_cfg)
    net = build_score_network(meta["architecture"], sde)
    load_weights_strict(net, weights, str(where))
    net.eval().requires_grad_(False)
    prior = ScorePrior(sde, net, tuple(meta["image_shape"]), centered=bool(meta.get("centered", False)),
                       name=name, solve_defaults=meta.get("solve_defaults") or {}, metadata=meta)
    return prior.to(device)


def _resolve(name_or_path: str | os.PathLike) -> tuple[Path, Path, str]:
    """(weights file, metadata file, tensor-key prefix) for a shipped name, file or run dir."""
    text = str(name_or_path)
    if text in shipped_prior_names():
        return SHIPPED_DIR / f"{text}.safetensors", SHIPPED_DIR / f"{text}.json", ""
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
    weights_path, meta_path, prefix = _resolve(name_or_path)
    if not meta_path.is_file():
        raise InputError(f"prior: metadata file {meta_path} is missing next to {weights_path}")
    meta = read_json(meta_path)
    weights = read_safetensors(weights_path)
    if prefix:
        weights = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    return prior_from_parts(meta, weights, weights_path, meta.get("name", str(name_or_path)), device)

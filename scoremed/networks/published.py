"""Import published score_sde_pytorch checkpoints (NCSN++ / DDPM++) as a :class:`ScorePrior`.

The reference format is ``{"model": DataParallel state dict, "ema": {"shadow_params": [...]},
"optimizer": ..., "step": ...}``. It is read with ``torch.load(weights_only=True)`` only; the
EMA weights (what the published models are meant to be used with) replace the raw ones.

Time-label conventions of the reference score functions:
- VE SDE: label = sigma(t), score = network output (NCSN++ divides by sigma itself);
- VP / sub-VP SDE: label = 999 t, score = -output / std(t).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml

from scoremed.configs import CONFIG_DIR
from scoremed.errors import InputError
from scoremed.io.checkpoint import load_weights_strict
from scoremed.networks import build_score_network
from scoremed.prior import ScorePrior
from scoremed.sde import SDE, sde_from_config

#: configurations of published models, shipped with the package (scoremed.configs: published/*.yaml)
PUBLISHED_DIR = CONFIG_DIR / "published"
_CONVENTIONS = {"vesde": ("sigma", "score"), "vpsde": ("999t", "epsilon"), "subvpsde": ("999t", "epsilon")}
_SHAPE_FIELDS = "model.nf, model.ch_mult, model.num_res_blocks, model.attn_resolutions, data.num_channels, " \
                "data.image_size, model.progressive*, model.resblock_type, model.embedding_type"


def published_configs() -> list[str]:
    """Names of the shipped reference configurations (usable as ``config`` of :func:`import_checkpoint`)."""
    return sorted(p.stem for p in PUBLISHED_DIR.glob("*.yaml"))


def read_reference_config(config: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """A reference configuration from a JSON / YAML file, a shipped name or a dict."""
    if isinstance(config, dict):
        return config
    path = Path(config)
    if not path.is_file() and path.suffix == "" and str(config) in published_configs():
        path = PUBLISHED_DIR / f"{config}.yaml"
    if not path.is_file():
        raise InputError(f"config: expected a JSON / YAML file or one of {published_configs()}, got {str(config)!r}")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"config: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"config: {path} must hold a mapping with 'sde', 'data' and 'model', "
                         f"got {type(data).__name__}")
    return data


def _sde_kind(config: dict[str, Any]) -> str:
    training = config.get("training") or {}
    kind = str(config.get("sde") or training.get("sde") or "").lower()
    if kind not in _CONVENTIONS:
        raise InputError(f"config.sde: expected one of {sorted(_CONVENTIONS)}, got {kind or None!r}")
    if training.get("continuous", True) is not True:
        raise InputError("config.training.continuous: only continuously trained checkpoints are supported "
                         "(discrete-time models use other time labels), got false")
    name = config.get("model", {}).get("name", "ncsnpp")
    if name != "ncsnpp":
        raise InputError(f"config.model.name: only 'ncsnpp' (NCSN++ / DDPM++) is supported, got {name!r}")
    return kind


def reference_sde(config: dict[str, Any]) -> SDE:
    """The SDE a reference configuration trains with (VE / VP / sub-VP, num_scales steps)."""
    kind, model = _sde_kind(config), config.get("model", {})
    keys = ("sigma_min", "sigma_max") if kind == "vesde" else ("beta_min", "beta_max")
    missing = [f"model.{k}" for k in (*keys, "num_scales") if k not in model]
    if missing:
        raise InputError(f"config: the {kind} needs {missing}")
    return sde_from_config(kind, **{k: float(model[k]) for k in keys}, N=int(model["num_scales"]))


def reference_architecture(config: dict[str, Any]) -> dict[str, Any]:
    """The architecture dict of :func:`scoremed.networks.build_score_network` for a reference config."""
    time_label, output = _CONVENTIONS[_sde_kind(config)]
    return {"name": "ncsnpp", "time_label": time_label, "output": output,
            "data": dict(config.get("data") or {}), "model": dict(config.get("model") or {})}


def _solve_defaults(sampling: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The reference PC settings (predictor, corrector, snr, corrector steps) as solve defaults."""
    names = {"predictor": "predictor", "corrector": "corrector", "snr": "snr", "n_steps_each": "n_corrector_steps"}
    values = {ours: sampling[ref] for ref, ours in names.items() if ref in sampling}
    return {method: dict(values) for method in ("consistency", "projection")} if values else {}


def read_reference_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dict, loaded with ``torch.load(weights_only=True)`` on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint: file {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - on garbage the weights-only unpickler raises struct.error, IndexError, ...
        reason = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"checkpoint: {path} cannot be read with torch.load(weights_only=True) — not a "
                         f"score_sde_pytorch checkpoint or not pickle-free ({reason})") from None
    if isinstance(ckpt, dict) and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        ckpt = {"model": ckpt}
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        found = list(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(f"checkpoint: {path} has no 'model' state dict (found {found})")
    return ckpt


def _model_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model state dict without the DataParallel ``module.`` prefix."""
    return {k.removeprefix("module."): v for k, v in ckpt["model"].items()}


def _apply_ema(backbone: torch.nn.Module, ckpt: dict[str, Any], where: str) -> None:
    """Copy ``ema.shadow_params`` onto the parameters that require grad, in definition order."""
    shadow = (ckpt.get("ema") or {}).get("shadow_params")
    if not isinstance(shadow, (list, tuple)):
        raise InputError(f"checkpoint: {where} has no ema.shadow_params; pass ema=False to use the raw weights")
    params = [(n, p) for n, p in backbone.named_parameters() if p.requires_grad]
    if len(shadow) != len(params):
        raise InputError(f"checkpoint: {where} has {len(shadow)} EMA tensors but the network has "
                         f"{len(params)} trainable parameters")
    wrong = [f"{n}: ema {tuple(s.shape)} vs model {tuple(p.shape)}" for (n, p), s in zip(params, shadow)
             if tuple(s.shape) != tuple(p.shape)]
    if wrong:
        raise InputError(f"checkpoint: {where} EMA shapes differ from the network: " + ", ".join(wrong[:10]))
    with torch.no_grad():
        for (_, p), s in zip(params, shadow):
            p.copy_(s)


def import_checkpoint(checkpoint: str | os.PathLike, config: str | os.PathLike | dict[str, Any], *,
                      ema: bool = True, device: torch.device | str | None = None) -> ScorePrior:
    """A :class:`ScorePrior` from a published score_sde_pytorch checkpoint and its configuration.

    Args:
        checkpoint: ``checkpoint_*.pth`` in the reference format (read without unpickling code).
        config: JSON / YAML file with the reference ``sde``, ``data.*`` and ``model.*`` fields, a
            shipped name from :func:`published_configs`, or the same as a dict.
        ema: use the EMA weights (how published models are evaluated); False for the raw weights.
        device: where to put the network.

    The prior's ``score(x, t)`` takes images as the model was trained on them: in [0, 1]
    (``centered=False``) or, for ``data.centered = true``, in [-1, 1] (``prior.centered``).
    """
    cfg = read_reference_config(config)
    sde, arch = reference_sde(cfg), reference_architecture(cfg)
    net = build_score_network(arch, sde)
    ckpt = read_reference_checkpoint(checkpoint)
    where = str(checkpoint)
    try:
        load_weights_strict(net.backbone, _model_state(ckpt), where)
    except InputError as exc:
        raise InputError(f"{exc}\nDoes the config match the checkpoint? Check {_SHAPE_FIELDS}") from None
    if ema:
        _apply_ema(net.backbone, ckpt, where)
    net.eval().requires_grad_(False)
    data = arch["data"]
    shape = (int(data["num_channels"]), int(data["image_size"]), int(data["image_size"]))
    step = ckpt.get("step")
    metadata = {"source": "score_sde_pytorch", "checkpoint": where, "ema": ema, "architecture": arch,
                "step": int(step) if isinstance(step, (int, torch.Tensor)) else None,
                "sampling": cfg.get("sampling") or {}}
    prior = ScorePrior(sde, net, shape, centered=bool(data["centered"]), name=Path(where).stem,
                       solve_defaults=_solve_defaults(metadata["sampling"]), metadata=metadata)
    return prior.to(device)


"""The prior and checkpoint file format: safetensors weights + JSON metadata, written atomically.

Two layouts:
- a *prior file pair* ``NAME.safetensors`` + ``NAME.json`` (EMA weights only): what is
  shipped and what :func:`write_prior_files` writes (:func:`scoremed.priors.save_prior` for a prior);
- a *training run* directory ``run/checkpoints/step_XXXXXXXX/`` holding ``weights.safetensors``
  (keys ``model.*`` and ``ema.*``), ``metadata.json`` and ``training_state.pt`` (optimiser
  and RNG state, read back with ``torch.load(weights_only=True)`` only), plus ``run/latest``
  naming the newest complete checkpoint.

Every metadata file written records ``weights_sha256``, the SHA-256 of its weights file;
:func:`read_safetensors` refuses weights that do not match it (bit rot, a torn copy, a weights
file paired with another checkpoint's metadata). The JSON itself stays hand-editable.
"""
from __future__ import annotations

import hashlib
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
from scoremed.io.atomic import atomic_write, atomic_write_text
from scoremed.prior import ScorePrior

FORMAT_VERSION = 1
#: bound on a checkpoint's default number of SDE steps (published models use 1000-2000)
MAX_SDE_STEPS = 100_000


# --- writing ------------------------------------------------------------------------
def prior_metadata(prior: ScorePrior, architecture: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The JSON metadata describing a network prior."""
    return {"format_version": FORMAT_VERSION, "kind": "scoremed-prior", "sde": prior.sde.config(),
            "architecture": architecture, "image_shape": list(prior.image_shape), "centered": prior.centered,
            "intensity": "data in [0, 1]; model space 2x-1" if prior.centered else "data in [0, 1]",
            "solve_defaults": prior.solve_defaults, **extra}


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def write_prior_files(path: str | os.PathLike, weights: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write ``path.safetensors`` (``weights``) and ``path.json`` (``metadata`` with the weights'
    ``weights_sha256``), each atomically; returns the weights path."""
    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".safetensors", ".json") else base
    tensors = _contiguous(weights)
    digest: list[str] = []

    def write_weights(p: Path) -> None:
        save_file(tensors, str(p))
        digest.append(file_sha256(p))

    atomic_write(base.with_suffix(".safetensors"), write_weights)
    meta = {**metadata, "weights_sha256": digest[0]}
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
    # temporaries left by a process killed while saving (there is one writer per run folder)
    for stale in ckpt_root.glob(".tmp_step_*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in run_dir.glob(".latest.tmp*"):
        stale.unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp_step_", dir=ckpt_root))
    try:
        tensors = {f"model.{k}": v for k, v in _contiguous(model.state_dict()).items()}
        tensors.update({f"ema.{k}": v for k, v in _contiguous(ema.state_dict()).items()})
        save_file(tensors, str(tmp / "weights.safetensors"))
        torch.save(training_state, tmp / "training_state.pt")
        checksums = {"weights_sha256": file_sha256(tmp / "weights.safetensors"),
                     "training_state_sha256": file_sha256(tmp / "training_state.pt")}
        (tmp / "metadata.json").write_text(json.dumps({**metadata, "step": step, **checksums},
                                                      indent=2, default=str))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if final.exists():
            _discard(final)
        os.replace(tmp, final)
        _fsync_dir(ckpt_root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_text(run_dir / "latest", final.name + "\n")
    for old in sorted(ckpt_root.glob("step_*"))[:-keep]:
        _discard(old)
    return final


def _discard(folder: Path) -> None:
    """Delete a checkpoint folder so that no half-deleted ``step_*`` folder is ever visible:
    rename it to a temporary name first (atomic), then delete it."""
    hidden = Path(tempfile.mkdtemp(prefix=".tmp_step_old_", dir=folder.parent))
    os.replace(folder, hidden / folder.name)
    shutil.rmtree(hidden, ignore_errors=True)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file (stored as ``weights_sha256`` next to every weights file written)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading ------------------------------------------------------------------------
def read_training_state(path: str | os.PathLike, device=None, sha256: str | None = None) -> dict[str, Any]:
    """Optimiser / RNG state of a training checkpoint, read with ``torch.load(weights_only=True)``.

    Only tensors and plain containers are accepted: a file crafted to run code when
    unpickled is refused with InputError and runs nothing. With ``sha256`` (the
    ``training_state_sha256`` of the checkpoint's metadata) a corrupted file is refused too:
    torch's zip reader does not notice flipped bytes inside tensor data.
    """
    if sha256 is not None:
        _check_sha256(Path(path), sha256)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - on garbage the weights-only unpickler raises struct.error, IndexError, ...
        raise InputError(f"checkpoint: {path} cannot be read as pickle-free training state "
                         f"({str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise InputError(f"checkpoint: {path} holds {type(state).__name__}, expected a training-state dict")
    return state


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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"checkpoint: cannot read metadata {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(meta, dict):
        raise InputError(f"checkpoint: metadata {path} is not a JSON object")
    return meta


def _check_sha256(path: Path, sha256: str) -> None:
    try:
        actual = file_sha256(path)
    except OSError as exc:
        raise InputError(f"checkpoint: cannot read {path}: {exc}") from None
    if actual != sha256:
        raise InputError(f"checkpoint: {path} does not match the sha256 recorded in its metadata "
                         f"(weights_sha256 / training_state_sha256: expected {str(sha256)[:16]}..., got "
                         f"{actual[:16]}...): the file is corrupted or belongs to another checkpoint")


def read_safetensors(path: Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; with ``sha256``, refuse a file whose checksum differs."""
    if sha256 is not None:
        _check_sha256(path, sha256)
    try:
        return load_file(str(path))
    except (OSError, SafetensorError, ValueError) as exc:
        raise InputError(f"checkpoint: {path} is not a readable safetensors file ({exc})") from None


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_metadata(meta: dict[str, Any], where: Path) -> None:
    """Raise InputError unless the metadata has this format version and well-typed fields."""
    version = meta.get("format_version")
    if version != FORMAT_VERSION or not _is_int(version):
        raise InputError(f"checkpoint: {where} has format_version {version!r}; this scoremed reads {FORMAT_VERSION}")
    missing = [k for k in ("sde", "architecture", "image_shape") if k not in meta]
    if missing:
        raise InputError(f"checkpoint: {where} metadata lacks {missing}")
    problems = []
    sde = meta["sde"]
    if not isinstance(sde, dict) or not isinstance(sde.get("kind"), str):
        problems.append(f"sde: expected a mapping with a 'kind' name, got {sde!r}")
    else:
        wrong = {k: v for k, v in sde.items() if k != "kind" and (isinstance(v, bool) or not isinstance(v, (int, float)))}
        if wrong:
            problems.append(f"sde: expected numbers for the parameters, got {wrong}")
        elif "N" in sde and not (_is_int(sde["N"]) and 1 <= sde["N"] <= MAX_SDE_STEPS):
            problems.append(f"sde.N: expected an integer in [1, {MAX_SDE_STEPS}], got {sde['N']!r}")
    arch = meta["architecture"]
    if not isinstance(arch, dict):
        problems.append(f"architecture: expected a mapping, got {type(arch).__name__}")
    shape = meta["image_shape"]
    resolution_free = isinstance(shape, list) and len(shape) == 3 and _is_int(shape[0]) and shape[0] >= 1 \
        and shape[1] is None and shape[2] is None
    if not resolution_free and not (isinstance(shape, list) and len(shape) in (3, 4)
                                    and all(_is_int(s) and s >= 1 for s in shape)):
        problems.append(f"image_shape: expected [C, H, W] or [C, D, H, W] of positive integers "
                        f"(or [C, null, null] for a patch prior), got {shape!r}")
    elif isinstance(arch, dict) and arch.get("patch_size") is not None and not (
            _is_int(arch["patch_size"]) and arch["patch_size"] >= 1):
        problems.append(f"architecture.patch_size: expected a positive integer, got {arch['patch_size']!r}")
    elif isinstance(arch, dict) and resolution_free != bool(arch.get("patch_size")):
        problems.append(f"image_shape: {shape} does not match the architecture's patch_size {arch.get('patch_size')!r}")
    elif isinstance(arch, dict):
        data = arch.get("data") if isinstance(arch.get("data"), dict) else {}
        channels = arch.get("in_channels", data.get("num_channels"))
        if channels is not None and channels != shape[0]:
            problems.append(f"image_shape: {shape} has {shape[0]} channel(s) but the architecture takes {channels!r}")
        size = data.get("image_size")
        if size is not None and any(s != size for s in shape[1:]):
            problems.append(f"image_shape: {shape} but the architecture is for {size!r} x {size!r} images")
    if not isinstance(meta.get("centered", False), bool):
        problems.append(f"centered: expected true or false, got {meta['centered']!r}")
    defaults = meta.get("solve_defaults") or {}
    if not (isinstance(defaults, dict) and all(isinstance(v, dict) for v in defaults.values())):
        problems.append(f"solve_defaults: expected a mapping of method -> settings, got {defaults!r}")
    if not isinstance(meta.get("name", ""), str):
        problems.append(f"name: expected a string, got {meta['name']!r}")
    if problems:
        raise InputError(f"checkpoint: {where} has invalid metadata — " + "; ".join(problems))


def _dtype_kind(t: torch.Tensor) -> str:
    return "complex" if t.is_complex() else "float" if t.is_floating_point() else str(t.dtype)


def load_weights_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``module``; on any mismatch raise InputError listing what differs."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    common = sorted(set(own) & set(state))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in common if own[k].shape != state[k].shape]
    dtypes = [f"{k}: checkpoint {state[k].dtype} vs model {own[k].dtype}" for k in common
              if _dtype_kind(state[k]) != _dtype_kind(own[k])]
    nonfinite = [k for k in common if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all())]
    if missing or unexpected or shapes or dtypes or nonfinite:
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape differences", shapes),
                             ("dtype differences", dtypes), ("tensors with NaN/Inf", nonfinite)):
            if items:
                parts.append(f"{label} ({len(items)}): " + ", ".join(items[:10]) + (" ..." if len(items) > 10 else ""))
        what = "does not match the architecture" if missing or unexpected or shapes or dtypes else "holds bad values"
        raise InputError(f"checkpoint: {where} {what} — " + "; ".join(parts))
    module.load_state_dict(state)

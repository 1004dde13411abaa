"""Typed training configuration loaded from YAML; unknown or misspelt keys are errors."""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scoremed.errors import InputError
from scoremed.networks.patch import MODES as PATCH_MODES
from scoremed.training.losses import NOISE_SAMPLINGS, NoiseSampling


@dataclass
class DataConfig:
    """Where training images come from: a built-in data set name or files (``paths``)."""
    dataset: str = "mri-brain"          # built-in data set when ``paths`` is empty
    paths: list[str] = field(default_factory=list)
    image_size: int = 64
    channels: int = 1
    num_workers: int = 0
    slice_axis: int = 2                 # for volumes: axis along which 2D slices are taken
    intensity: str = "percentile"       # "percentile" clipping to [0, 1] or "ct" (HU window)
    ct_window: list[float] = field(default_factory=lambda: [-1000.0, 1000.0])
    #: > 0: train a resolution-free patch prior on random patch_size x patch_size patches of
    #: full-resolution images (image_size is then unused); 0: whole images resized to image_size
    patch_size: int = 0
    #: patch training: number of full-resolution images loaded once and cut into patches
    pool_size: int = 256
    #: share of training items replaced by dead-leaves images (generic structure; scoremed.data.dead_leaves)
    dead_leaves: float = 0.0


@dataclass
class SDEConfig:
    kind: str = "vesde"
    sigma_min: float = 0.01
    sigma_max: float = 50.0
    beta_min: float = 0.1
    beta_max: float = 20.0
    N: int = 1000

    def params(self) -> dict[str, Any]:
        """Keyword arguments of the chosen SDE class."""
        if self.kind == "vesde":
            return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "N": self.N}
        return {"beta_min": self.beta_min, "beta_max": self.beta_max, "N": self.N}


@dataclass
class ModelConfig:
    """Architecture dict handed to :func:`scoremed.networks.build_score_network`."""
    name: str = "monai-unet"
    channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    attention_levels: list[bool] = field(default_factory=lambda: [False, False, True])
    num_res_blocks: int = 1
    num_head_channels: int = 32
    norm_num_groups: int = 16
    resblock_updown: bool = False
    bias: bool = False                  # resunet: convolutions with bias terms (default bias-free)
    time_label: str = "999t"
    output: str = "epsilon"
    input_scaling: bool = True
    sigma_data: float = 0.5
    #: how a patch prior scores a whole image: "tiles" (P x P tiles at a random offset) or "full"
    #: (one fully convolutional pass; exact for networks without normalisation or attention)
    patch_mode: str = "tiles"
    #: "tiles" mode: pixels of neighbourhood scored with each tile on every side and cropped away
    #: (8: +0.2 to +0.6 dB Tweedie PSNR for 1.4-1.8x the time of bare tiles; docs/training-recipe.md)
    patch_context: int = 8


@dataclass
class TrainingConfig:
    steps: int = 20000
    batch_size: int = 8
    lr: float = 2e-4
    warmup: int = 500
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    likelihood_weighting: bool = False
    eps: float = 1e-5
    #: training times: "uniform" in t, or "lognormal" in the noise level sigma (data units) with
    #: ln sigma ~ N(noise_log_mean, noise_log_std^2), a share noise_uniform_fraction still uniform in t
    noise_sampling: str = "uniform"
    noise_log_mean: float = -2.5
    noise_log_std: float = 1.5
    noise_uniform_fraction: float = 0.2
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 25
    seed: int = 0
    # speed options (see scoremed.networks): "auto" = bf16 autocast on CUDA, fp32 on the CPU
    precision: str = "auto"
    compile: str = "off"                # off | default | reduce-overhead (CUDA graphs) | max-autotune
    channels_last: bool = False


@dataclass
class Config:
    name: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    sde: SDEConfig = field(default_factory=SDEConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    #: default solve settings per method, stored with the trained prior
    solve: dict[str, dict[str, Any]] = field(default_factory=dict)

    def architecture(self) -> dict[str, Any]:
        """The network's architecture dict (model fields plus input channels, dims and patch settings)."""
        arch = dataclasses.asdict(self.model)
        arch.update(in_channels=self.data.channels, spatial_dims=2)
        if self.data.patch_size:
            arch.update(position_channels=2, patch_size=self.data.patch_size)
        return arch

    def image_shape(self) -> tuple[int | None, ...]:
        """(C, S, S) of a whole-image prior, (C, None, None) of a resolution-free patch prior."""
        size = None if self.data.patch_size else self.data.image_size
        return (self.data.channels, size, size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def noise_sampling(self) -> NoiseSampling:
        """The :class:`scoremed.training.losses.NoiseSampling` of the training section."""
        tc = self.training
        return NoiseSampling(tc.noise_sampling, tc.noise_log_mean, tc.noise_log_std, tc.noise_uniform_fraction)


def _build(cls, values: Any, where: str):
    if not isinstance(values, dict):
        raise InputError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise InputError(f"config: keys of {where or 'the config'} must be names, got {key!r}")
        if key not in fields:
            hint = difflib.get_close_matches(key, fields, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise InputError(f"config: unknown key {where + '.' if where else ''}{key}{suggestion}; "
                             f"known keys: {sorted(fields)}")
        sub = fields[key].default_factory if fields[key].default_factory is not dataclasses.MISSING else None
        name = f"{where}.{key}" if where else key
        if sub is not None and dataclasses.is_dataclass(sub):
            kwargs[key] = _build(sub, value, name)
        else:
            kwargs[key] = _check_value(name, value, sub() if sub is not None else fields[key].default)
    return cls(**kwargs)


#: numeric fields that must be > 0, >= 0, or in [0, 1)
_POSITIVE = {"data.image_size", "data.pool_size", "data.channels", "sde.sigma_min", "sde.sigma_max", "sde.beta_max", "sde.N",
             "model.channels", "model.num_res_blocks", "model.num_head_channels", "model.norm_num_groups", "model.sigma_data",
             "training.steps", "training.batch_size", "training.lr", "training.eps", "training.checkpoint_every",
             "training.keep_checkpoints", "training.log_every", "training.noise_log_std"}
_NON_NEGATIVE = {"data.num_workers", "data.patch_size", "model.patch_context", "sde.beta_min", "training.warmup", "training.grad_clip",
                 "training.seed"}
#: string fields with a fixed set of values
_CHOICES = {"training.noise_sampling": NOISE_SAMPLINGS, "model.patch_mode": PATCH_MODES}
_UNIT = {"data.dead_leaves", "training.ema_decay", "training.noise_uniform_fraction"}
#: item type of list fields whose default is empty
_LIST_ITEMS = {"data.paths": ""}


def _type_name(value: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def _check_value(name: str, value: Any, default: Any) -> Any:
    """``value`` with the type of ``default`` (ints accepted for floats) and in the field's range."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise InputError(f"config: {name} expected {_type_name(default)}, got {value!r}")
    if isinstance(default, list) and (default or name in _LIST_ITEMS):
        item = default[0] if default else _LIST_ITEMS[name]
        value = [_check_value(f"{name}[{i}]", v, item) for i, v in enumerate(value)]
    base = name.split("[")[0]
    if base in _CHOICES and value not in _CHOICES[base]:
        raise InputError(f"config: {name} expected one of {list(_CHOICES[base])}, got {value!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    if base in _POSITIVE and value <= 0 or base in _NON_NEGATIVE and value < 0 \
            or base in _UNIT and not 0 <= value < 1:
        rule = "> 0" if base in _POSITIVE else ">= 0" if base in _NON_NEGATIVE else "in [0, 1)"
        raise InputError(f"config: {name} expected a value {rule}, got {value!r}")
    return value


def config_from_dict(values: dict[str, Any]) -> Config:
    return _build(Config, values or {}, "")


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a YAML config file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config: file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"config: {path} is not valid YAML: {exc}") from None
    except OSError as exc:
        raise InputError(f"config: cannot read {path}: {exc}") from None
    return config_from_dict(values)

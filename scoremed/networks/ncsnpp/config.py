"""The architecture fields of a score_sde_pytorch configuration, read and checked."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from scoremed.errors import InputError

#: fields without a safe default: they change the weights or the numbers
REQUIRED = {
    "data": ("image_size", "num_channels", "centered"),
    "model": ("nf", "ch_mult", "num_res_blocks", "attn_resolutions", "scale_by_sigma", "fir", "skip_rescale",
              "resblock_type", "progressive", "progressive_input", "embedding_type",
              "sigma_min", "sigma_max", "num_scales"),
}
#: fields every published NCSN++ / DDPM++ configuration sets to the same value
DEFAULTS: dict[str, Any] = {
    "normalization": "GroupNorm", "nonlinearity": "swish", "resamp_with_conv": True, "conditional": True,
    "fir_kernel": (1, 3, 3, 1), "progressive_combine": "sum", "attention_type": "ddpm", "init_scale": 0.0,
    "fourier_scale": 16.0, "conv_size": 3, "dropout": 0.0,
}
CHOICES = {
    "resblock_type": ("ddpm", "biggan"), "progressive": ("none", "output_skip", "residual"),
    "progressive_input": ("none", "input_skip", "residual"), "embedding_type": ("fourier", "positional"),
    "progressive_combine": ("sum", "cat"), "nonlinearity": ("elu", "relu", "lrelu", "swish"),
    "normalization": ("groupnorm",), "attention_type": ("ddpm",),
}


@dataclass(frozen=True)
class NCSNppConfig:
    """NCSN++ / DDPM++ hyper-parameters (``model.*`` and ``data.*`` of the reference config)."""

    image_size: int
    num_channels: int
    centered: bool
    nf: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    attn_resolutions: tuple[int, ...]
    scale_by_sigma: bool
    fir: bool
    skip_rescale: bool
    resblock_type: str
    progressive: str
    progressive_input: str
    embedding_type: str
    sigma_min: float
    sigma_max: float
    num_scales: int
    normalization: str
    nonlinearity: str
    resamp_with_conv: bool
    conditional: bool
    fir_kernel: tuple[float, ...]
    progressive_combine: str
    attention_type: str
    init_scale: float
    fourier_scale: float
    conv_size: int
    dropout: float

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "NCSNppConfig":
        """Read a nested reference config ``{"data": {...}, "model": {...}}`` (extra keys are ignored)."""
        sections = {}
        for section in ("data", "model"):
            value = config.get(section)
            if not isinstance(value, dict):
                raise InputError(f"config.{section}: expected a mapping with the reference {section}.* fields, "
                                 f"got {type(value).__name__}")
            sections[section] = value
        missing = [f"{s}.{k}" for s, keys in REQUIRED.items() for k in keys if k not in sections[s]]
        if missing:
            raise InputError(f"config: missing required fields {missing}")
        values = {**DEFAULTS, **sections["model"],
                  **{k: sections["data"][k] for k in REQUIRED["data"]}}
        values = {f.name: values[f.name] for f in fields(cls)}
        for key, allowed in CHOICES.items():
            values[key] = str(values[key]).lower()
            if values[key] not in allowed:
                raise InputError(f"config.model.{key}: expected one of {list(allowed)}, got {values[key]!r}")
        if int(values["conv_size"]) != 3:
            raise InputError(f"config.model.conv_size: only 3 is supported, got {values['conv_size']!r}")
        try:
            for key in ("ch_mult", "attn_resolutions"):
                values[key] = tuple(int(v) for v in values[key])
            values["fir_kernel"] = tuple(float(v) for v in values["fir_kernel"])
            for key in ("image_size", "num_channels", "nf", "num_res_blocks", "num_scales", "conv_size"):
                values[key] = int(values[key])
            for key in ("sigma_min", "sigma_max", "init_scale", "fourier_scale", "dropout"):
                values[key] = float(values[key])
        except (TypeError, ValueError) as exc:
            raise InputError(f"config: a numeric field has a non-numeric value ({exc})") from None
        for key in ("centered", "scale_by_sigma", "fir", "skip_rescale", "resamp_with_conv", "conditional"):
            if not isinstance(values[key], bool):
                raise InputError(f"config: {key} must be true or false, got {values[key]!r}")
        levels = len(values["ch_mult"])
        if levels < 1 or values["image_size"] % 2 ** (levels - 1):
            raise InputError(f"config: data.image_size {values['image_size']} must be divisible by "
                             f"2^(len(model.ch_mult) - 1) = {2 ** max(levels - 1, 0)}")
        return cls(**values)

    @property
    def resolutions(self) -> list[int]:
        """Feature-map size at each level of the U-Net."""
        return [self.image_size // 2 ** i for i in range(len(self.ch_mult))]

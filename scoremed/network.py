"""Score networks: a swappable backbone wrapped with time conditioning and output scaling."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from scoremed.errors import InputError
from scoremed.sde import SDE
from scoremed.utils import append_dims

#: time-label conventions: what the backbone receives as its "timestep" argument
TIME_LABELS = ("999t", "sigma")
#: output conventions: "epsilon" -> score = -out / std(t); "score" -> score = out
OUTPUTS = ("epsilon", "score")


class ScoreNetwork(nn.Module):
    """score(x, t) from a backbone ``backbone(x, label) -> (B, *image_shape)``.

    Args:
        backbone: any module taking (x, label (B,)).
        sde: gives std(t) and the mean coefficient a(t).
        time_label: "999t" (label = 999 t, DDPM-style) or "sigma" (label = std(t), NCSN-style).
        output: "epsilon" (the backbone predicts the noise; score = -out / std(t)) or
            "score" (the backbone output is the score, e.g. NCSN++ with scale_by_sigma).
        input_scaling: feed x / sqrt(a(t)^2 sigma_data^2 + std(t)^2) so the backbone sees
            unit-scale inputs at every noise level (helps small networks on VE SDEs).
        sigma_data: typical data standard deviation used by input_scaling.
    """

    def __init__(self, backbone: nn.Module, sde: SDE, time_label: str = "999t", output: str = "epsilon",
                 input_scaling: bool = False, sigma_data: float = 0.5):
        super().__init__()
        if time_label not in TIME_LABELS:
            raise InputError(f"time_label: expected one of {TIME_LABELS}, got {time_label!r}")
        if output not in OUTPUTS:
            raise InputError(f"output: expected one of {OUTPUTS}, got {output!r}")
        self.backbone, self.sde = backbone, sde
        self.time_label, self.output = time_label, output
        self.input_scaling, self.sigma_data = input_scaling, float(sigma_data)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        std = self.sde.marginal_std(t)
        label = 999.0 * t if self.time_label == "999t" else std
        if self.input_scaling:
            a = self.sde.mean_coeff(t)
            x = x * append_dims(torch.rsqrt(a * a * self.sigma_data ** 2 + std * std), x.ndim)
        out = self.backbone(x, label)
        return -out / append_dims(std, x.ndim) if self.output == "epsilon" else out


def _monai_unet(arch: dict[str, Any]) -> nn.Module:
    from monai.networks.nets import DiffusionModelUNet

    levels = len(arch["channels"])
    return DiffusionModelUNet(
        spatial_dims=int(arch.get("spatial_dims", 2)),
        in_channels=int(arch["in_channels"]),
        out_channels=int(arch["in_channels"]),
        channels=tuple(arch["channels"]),
        attention_levels=tuple(arch.get("attention_levels", [False] * levels)),
        num_res_blocks=arch.get("num_res_blocks", 1),
        num_head_channels=arch.get("num_head_channels", 32),
        norm_num_groups=int(arch.get("norm_num_groups", 16)),
        resblock_updown=bool(arch.get("resblock_updown", False)),
    )


def _ncsnpp(arch: dict[str, Any]) -> nn.Module:
    from scoremed.ncsnpp import build_ncsnpp

    return build_ncsnpp(arch)


#: backbone builders by architecture name; each takes the architecture dict
BACKBONES = {"monai-unet": _monai_unet, "ncsnpp": _ncsnpp}


def build_backbone(arch: dict[str, Any]) -> nn.Module:
    """Build the backbone named by ``arch["name"]`` from its architecture dict."""
    name = arch.get("name")
    if name not in BACKBONES:
        raise InputError(f"architecture.name: expected one of {sorted(BACKBONES)}, got {name!r}")
    return BACKBONES[name](arch)


def build_score_network(arch: dict[str, Any], sde: SDE) -> ScoreNetwork:
    """Backbone plus score conventions from one architecture dict (keys time_label, output, input_scaling)."""
    return ScoreNetwork(build_backbone(arch), sde, time_label=arch.get("time_label", "999t"),
                        output=arch.get("output", "epsilon"), input_scaling=bool(arch.get("input_scaling", False)),
                        sigma_data=float(arch.get("sigma_data", 0.5)))


# --- speed options (GPU oriented; all off on the CPU by default) ---------------------------
PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


def resolve_precision(precision: str | None, device: torch.device | str) -> str:
    """"auto" -> "bf16" on a CUDA device that supports it, else "fp32"; validates the name."""
    precision = "auto" if precision is None else str(precision)
    if precision not in PRECISIONS:
        raise InputError(f"precision: expected one of {list(PRECISIONS)}, got {precision!r}")
    device = torch.device(device)
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def resolve_compile(mode: str | bool | None, device: torch.device | str) -> str:
    """Normalise a compile option (False/None -> "off", True -> "default"); CUDA graphs need CUDA."""
    mode = {None: "off", False: "off", True: "default"}.get(mode, mode) if not isinstance(mode, str) else mode
    if mode not in COMPILE_MODES:
        raise InputError(f"compile: expected one of {list(COMPILE_MODES)}, got {mode!r}")
    if mode == "reduce-overhead" and torch.device(device).type != "cuda":
        raise InputError(f"compile: 'reduce-overhead' captures CUDA graphs and needs a CUDA device, got {device}; "
                         "use 'default' or 'off' on the CPU")
    return mode


def autocast(device: torch.device | str, precision: str):
    """The autocast context of ``precision`` ("bf16": bfloat16 autocast, "fp32": disabled)."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def memory_format(ndim: int) -> torch.memory_format:
    """channels_last for (B, C, H, W), channels_last_3d for (B, C, D, H, W)."""
    return torch.channels_last_3d if ndim == 5 else torch.channels_last


class FastScore(nn.Module):
    """A score function run with speed options: bf16 autocast, channels-last, ``torch.compile``.

    The output is always float32 and contiguous, so samplers and measurement steps are
    unaffected. With every option off this is the plain score function.
    ``channels_last`` converts the network's weights in place (values unchanged).
    """

    def __init__(self, score_fn, device: torch.device | str, precision: str = "fp32",
                 channels_last: bool = False, compile: str | bool = "off"):
        super().__init__()
        self.device_type = torch.device(device).type
        self.precision = resolve_precision(precision, device)
        self.compile_mode = resolve_compile(compile, device)
        self.channels_last = bool(channels_last)
        if self.channels_last and isinstance(score_fn, nn.Module):
            score_fn.to(memory_format=torch.channels_last)
        self.score_fn = score_fn
        self._run = score_fn if self.compile_mode == "off" else torch.compile(score_fn, mode=(
            None if self.compile_mode == "default" else self.compile_mode), dynamic=False)

    @property
    def enabled(self) -> bool:
        return self.precision != "fp32" or self.channels_last or self.compile_mode != "off"

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.ndim in (4, 5):
            x = x.contiguous(memory_format=memory_format(x.ndim))
        graphs = self.compile_mode == "reduce-overhead"
        if graphs:   # a new CUDA-graph replay; its static output buffer is copied below before the next one
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self._run(x, t)
        out = out.float().contiguous()
        return out.clone() if graphs else out


def fast_score(score_fn, device: torch.device | str, precision: str | None = "fp32", channels_last: bool = False,
               compile: str | bool | None = "off"):
    """``score_fn`` itself when every option is off (bit-identical results), else a :class:`FastScore`."""
    wrapped = FastScore(score_fn, device, precision or "fp32", bool(channels_last), compile)
    return wrapped if wrapped.enabled else score_fn

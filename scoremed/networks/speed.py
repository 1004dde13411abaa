"""Speed options for score evaluations: bf16 autocast, channels-last, ``torch.compile``.

GPU oriented; all off on the CPU by default.
"""
from __future__ import annotations

import torch
from torch import nn

from scoremed.errors import InputError

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

    def forward(self, x: torch.Tensor, t: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        """score(x, t, *extra) under the speed options (extra: e.g. a patch network's positions)."""
        if self.channels_last and x.ndim in (4, 5):
            x = x.contiguous(memory_format=memory_format(x.ndim))
        graphs = self.compile_mode == "reduce-overhead"
        if graphs:   # a new CUDA-graph replay; its static output buffer is copied below before the next one
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self._run(x, t, *extra)
        out = out.float().contiguous()
        return out.clone() if graphs else out


def fast_score(score_fn, device: torch.device | str, precision: str | None = "fp32", channels_last: bool = False,
               compile: str | bool | None = "off"):
    """``score_fn`` itself when every option is off (bit-identical results), else a :class:`FastScore`."""
    wrapped = FastScore(score_fn, device, precision or "fp32", bool(channels_last), compile)
    return wrapped if wrapped.enabled else score_fn

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

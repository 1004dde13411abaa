"""Backbone registry: architecture name -> builder of a module ``backbone(x, label)``."""
from __future__ import annotations

from typing import Any

from torch import nn

from scoremed.errors import InputError


def _monai_unet(arch: dict[str, Any]) -> nn.Module:
    from monai.networks.nets import DiffusionModelUNet

    levels = len(arch["channels"])
    return DiffusionModelUNet(
        spatial_dims=int(arch.get("spatial_dims", 2)),
        in_channels=int(arch["in_channels"]) + int(arch.get("position_channels", 0)),
        out_channels=int(arch["in_channels"]),
        channels=tuple(arch["channels"]),
        attention_levels=tuple(arch.get("attention_levels", [False] * levels)),
        num_res_blocks=arch.get("num_res_blocks", 1),
        num_head_channels=arch.get("num_head_channels", 32),
        norm_num_groups=int(arch.get("norm_num_groups", 16)),
        resblock_updown=bool(arch.get("resblock_updown", False)),
    )


def _ncsnpp(arch: dict[str, Any]) -> nn.Module:
    from scoremed.networks.ncsnpp import build_ncsnpp

    return build_ncsnpp(arch)


def _resunet(arch: dict[str, Any]) -> nn.Module:
    from scoremed.networks.resunet import build_resunet

    return build_resunet(arch)


#: backbone builders by architecture name; each takes the architecture dict
BACKBONES = {"monai-unet": _monai_unet, "ncsnpp": _ncsnpp, "resunet": _resunet}


def build_backbone(arch: dict[str, Any]) -> nn.Module:
    """Build the backbone named by ``arch["name"]`` from its architecture dict."""
    name = arch.get("name")
    if name not in BACKBONES:
        raise InputError(f"architecture.name: expected one of {sorted(BACKBONES)}, got {name!r}")
    return BACKBONES[name](arch)



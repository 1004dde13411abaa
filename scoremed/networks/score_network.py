"""ScoreNetwork: a backbone wrapped with time conditioning, input and output scaling."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from scoremed.errors import InputError
from scoremed.networks.backbones import build_backbone
from scoremed.networks.patch import image_positions
from scoremed.sde import SDE
from scoremed.utils import append_dims

#: time-label conventions: what the backbone receives as its "timestep" argument
TIME_LABELS = ("999t", "sigma")
#: output conventions: "epsilon" -> score = -out / std(t); "score" -> score = out;
#: "edm" -> the backbone output is the F of a Karras et al. (2022) preconditioned denoiser;
#: "residual" -> the backbone predicts the noise of its own (scaled) input (see ScoreNetwork)
OUTPUTS = ("epsilon", "score", "edm", "residual")


class ScoreNetwork(nn.Module):
    """score(x, t) from a backbone ``backbone(x, label) -> (B, *image_shape)``.

    Args:
        backbone: any module taking (x, label (B,)).
        sde: gives std(t) and the mean coefficient a(t).
        time_label: "999t" (label = 999 t, DDPM-style) or "sigma" (label = std(t), NCSN-style).
        output: "epsilon" (the backbone predicts the noise; score = -out / std(t)) or
            "score" (the backbone output is the score, e.g. NCSN++ with scale_by_sigma) or "edm"
            (Karras et al. 2022: in data space y = x / a(t) with noise sigma = std(t) / a(t), the
            denoiser is D = c_skip y + c_out out, c_skip = sigma_data^2 / (sigma^2 + sigma_data^2),
            c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2); score = (a D - x) / std^2).
            "edm" implies input_scaling (c_in); with the DSM loss its weighting is EDM's up to a
            factor 1 + sigma^2 / sigma_data^2. Or "residual" (residual learning as in DnCNN / DRUNet):
            the backbone predicts the noise of its own input c_in y, c_in = 1 / sqrt(sigma^2 + sigma_data^2),
            so D = y - out / c_in and score = -a out / (c_in std^2). The output then has the scale of
            the input's noise at every sigma, which a network without normalisation layers needs (an
            epsilon output asks it for a gain 1 / (c_in sigma), 50 at sigma 0.01). Implies input_scaling.
        input_scaling: feed x / sqrt(a(t)^2 sigma_data^2 + std(t)^2) so the backbone sees
            unit-scale inputs at every noise level (helps small networks on VE SDEs).
        sigma_data: typical data standard deviation used by input_scaling.
        position_channels: 0, or 2 for a patch network: the backbone then also takes the
            (B, 2, H, W) position of every pixel in the field of view (``scoremed.networks.patch``);
            without an explicit position the whole input is taken as the field of view.
    """

    def __init__(self, backbone: nn.Module, sde: SDE, time_label: str = "999t", output: str = "epsilon",
                 input_scaling: bool = False, sigma_data: float = 0.5, position_channels: int = 0):
        super().__init__()
        if time_label not in TIME_LABELS:
            raise InputError(f"time_label: expected one of {TIME_LABELS}, got {time_label!r}")
        if output not in OUTPUTS:
            raise InputError(f"output: expected one of {OUTPUTS}, got {output!r}")
        self.backbone, self.sde = backbone, sde
        self.time_label, self.output = time_label, output
        self.input_scaling, self.sigma_data = input_scaling, float(sigma_data)
        if position_channels not in (0, 2):
            raise InputError(f"position_channels: expected 0 or 2, got {position_channels!r}")
        self.position_channels = int(position_channels)

    def forward(self, x: torch.Tensor, t: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor:
        """Score (B, C, ...) at x (B, C, ...), t (B,); ``position`` (B, 2, H, W) for patch networks."""
        std = self.sde.marginal_std(t)
        label = 999.0 * t if self.time_label == "999t" else std
        inputs = x
        if self.input_scaling or self.output in ("edm", "residual"):
            a = self.sde.mean_coeff(t)
            c_in = append_dims(torch.rsqrt(a * a * self.sigma_data ** 2 + std * std), x.ndim)
            inputs = x * c_in
        if self.position_channels:
            if position is None:
                position = image_positions(x.shape[0], x.shape[-2], x.shape[-1], x.device).to(x.dtype)
            inputs = torch.cat([inputs, position], 1)
        out = self.backbone(inputs, label)
        if self.output == "epsilon":
            return -out / append_dims(std, x.ndim)
        if self.output == "edm":
            return self._edm_score(x, out, a, std)
        if self.output == "residual":   # the input noise is std z c_in, so z = out / (c_in std)
            return -out / (c_in * append_dims(std * std, x.ndim))
        return out

    def _edm_score(self, x: torch.Tensor, out: torch.Tensor, a: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """score (like x) of the preconditioned denoiser D = c_skip x / a + c_out out (see the class)."""
        a, std = append_dims(a, x.ndim), append_dims(std, x.ndim)
        sigma, sd2 = std / a, self.sigma_data ** 2
        norm = sigma * sigma + sd2
        denoised = (sd2 / norm) * (x / a) + (sigma * self.sigma_data * torch.rsqrt(norm)) * out
        return (a * denoised - x) / (std * std)


def build_score_network(arch: dict[str, Any], sde: SDE) -> ScoreNetwork:
    """Backbone plus score conventions from one architecture dict (keys time_label, output, input_scaling)."""
    return ScoreNetwork(build_backbone(arch), sde, time_label=arch.get("time_label", "999t"),
                        output=arch.get("output", "epsilon"), input_scaling=bool(arch.get("input_scaling", False)),
                        sigma_data=float(arch.get("sigma_data", 0.5)),
                        position_channels=int(arch.get("position_channels", 0)))



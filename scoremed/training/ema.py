"""Exponential moving average of a model's weights, with decay warm-up."""
from __future__ import annotations

import copy

import torch


class EMA:
    """Exponential moving average of a module's floating-point state.

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so early
    averages are not dominated by the initial weights (MONAI's U-Net starts with a
    zero output layer, which would otherwise shrink the EMA score for thousands of steps).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        """Average in ``model`` after its ``step``-th optimiser step (1-based)."""
        decay = min(self.decay, (1 + step) / (10 + step))
        ema_p = [p for p in self.module.parameters()]
        torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1 - decay)
        for eb, b in zip(self.module.buffers(), model.buffers()):
            eb.copy_(b)

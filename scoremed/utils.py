"""Small helpers shared across the core."""
from __future__ import annotations

import torch


def append_dims(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append trailing singleton dims so ``v`` (B,) broadcasts against a (B, ...) tensor of ``ndim`` dims."""
    missing = ndim - v.ndim
    if missing < 0:
        raise ValueError(f"append_dims: tensor has {v.ndim} dims, more than the target {ndim}")
    return v.reshape(*v.shape, *([1] * missing))


def make_generator(seed: int | None, device: torch.device | str | None = None) -> torch.Generator | None:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``; None when seed is None."""
    if seed is None:
        return None
    g = torch.Generator(device=torch.device(device) if device is not None else "cpu")
    g.manual_seed(int(seed))
    return g


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` drawn from ``generator`` (on x's device)."""
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

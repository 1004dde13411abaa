"""Colorization: RGB images measured as their gray mean, the shipped ``natural`` prior, and the gray
image copied to R, G and B (the operator's pseudo-inverse) as the baseline."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from scoremed.tasks.base import Baseline, Task


@dataclass
class Options:
    """Colorization has no options."""


def make_operator(image_shape: tuple[int, int, int], options: Options):
    """The RGB -> gray operator (images (3, H, W))."""
    from scoremed.operators import Grayscale

    return Grayscale()


def gray_copy(y: torch.Tensor, operator) -> torch.Tensor:
    """The gray image copied to every channel."""
    return operator.pseudo_inverse(y)


TASK = Task(name="colorize", summary="colorization of gray images", options=Options, build=make_operator,
            baselines=(Baseline("gray-copy", "gray copy", gray_copy),), kinds=("colorize",),
            default_prior="natural")

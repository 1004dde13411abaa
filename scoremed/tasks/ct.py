"""Sparse-view CT: parallel-beam views out of a full 180-view grid, the shipped ``ct-phantom`` prior,
and a SART baseline (``skimage.transform.iradon_sart``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scoremed.errors import InputError, check_int
from scoremed.tasks.base import Task, option


@dataclass
class Options:
    views: int = option(23, "measured views out of 180")


def measured_operator(size: int, views: int, angles=None):
    """CT of n x n images (``size`` = n, n detectors) at ``views`` evenly spaced views of 180, or at
    ``angles`` (radians) when given."""
    from scoremed.operators import CT, sparse_view_angles

    return CT(size, sparse_view_angles(views) if angles is None else angles)


def make_operator(image_shape: tuple[int, int, int], options: Options):
    """Sparse-view CT for square images (C, n, n)."""
    h, w = image_shape[-2:]
    if h != w:
        raise InputError(f"image_shape: CT needs square images, got {tuple(image_shape)}")
    return measured_operator(h, check_int(options.views, "views", 1))


def sart(y: torch.Tensor, operator, iterations: int = 5) -> torch.Tensor:
    """SART (skimage) started from nothing, ``iterations`` passes, per image and channel."""
    from skimage.transform import iradon_sart

    degrees = np.rad2deg(operator.angles.detach().cpu().double().numpy())
    sino = y.detach().cpu().double().numpy()
    out = np.zeros((*sino.shape[:2], operator.image_size, operator.image_size))
    for b in range(sino.shape[0]):
        for c in range(sino.shape[1]):
            image = None
            for _ in range(iterations):
                image = iradon_sart(sino[b, c].T, theta=degrees, image=image)
            out[b, c] = image
    return torch.from_numpy(out).float().to(y.device)


TASK = Task(name="ct", summary="sparse-view parallel-beam CT", options=Options, build=make_operator,
            classical=sart, classical_names={"ct": "SART (skimage)"}, default_prior="ct-phantom")

"""Colorization: RGB image (B, 3, H, W) -> gray image (B, 1, H, W), the mean of R, G, B."""
from __future__ import annotations

import math

import torch

from .base import DecomposableOperator, Shape
from .checks import check_tensor


class Grayscale(DecomposableOperator):
    """y = (R + G + B) / 3.

    T is the orthonormal colour transform ``matrix`` (3, 3) whose first row is
    (1, 1, 1)/sqrt(3); ``mask`` (1, 3, 1, 1) keeps channel 0 of T x, and
    ``embed(y)`` puts sqrt(3) * y into channel 0.
    """

    kind = "colorize"
    measurement_name = "gray image"
    has_prox_l2 = True

    def __init__(self):
        super().__init__()
        matrix = torch.tensor([[1.0, 1.0, 1.0],
                               [1.0, -1.0, 0.0],
                               [1.0, 1.0, -2.0]], dtype=torch.float64)
        matrix = matrix / matrix.norm(dim=1, keepdim=True)
        self.register_buffer("matrix", matrix.to(torch.float32))
        self.register_buffer("mask", torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1))

    @property
    def image_shape(self) -> Shape:
        return (3, None, None)

    @property
    def measurement_shape(self) -> Shape:
        return (1, None, None)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1, H, W)."""
        return x.mean(dim=1, keepdim=True)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> (B, 3, H, W), y / 3 in every channel."""
        return (y / 3).repeat(1, 3, 1, 1)

    def pseudo_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The gray image copied into the 3 channels."""
        return self.check_measurement(y).repeat(1, 3, 1, 1)

    def prox_l2(self, v: torch.Tensor, y: torch.Tensor, rho: float | torch.Tensor) -> torch.Tensor:
        """Exact: A^H A = P / 3 with P the projection onto grays, so v + A^H (y - A v) / (1/3 + rho)."""
        return self._projection_prox(v, y, rho, 1 / 3)

    def _apply_matrix(self, m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,bjhw->bihw", m.to(t.dtype), t)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_matrix(self.matrix, self.check_image(x))

    def inverse_transform(self, k: torch.Tensor) -> torch.Tensor:
        k = self._check_device(check_tensor(k, "k", self.image_shape, "real", "colour-transformed image"), "k")
        return self._apply_matrix(self.matrix.T, k)

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        y = self._check_measurement_layout(y)
        zeros = torch.zeros_like(y)
        return torch.cat([y * math.sqrt(3), zeros, zeros], dim=1)

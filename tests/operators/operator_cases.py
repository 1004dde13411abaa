"""The operators every protocol test runs over (one list), and the foreign operators users bring.

``Blur`` is a user's forward-only ``nn.Module``; ``StandInInpainting`` and ``StandInMRI``
have the interface of deepinv's ``LinearPhysics`` (``A``, ``A_adjoint``, ``A_dagger``,
``img_size``; ``forward`` adds noise) as in deepinv 0.4.1, without importing deepinv.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from scoremed.operators import (CT, FFT, MRI, FanBeamCT, Grayscale, Inpainting, Mask, MultiCoilMRI, Multiply, Stack,
                                as_operator, box_mask, cartesian_mask, full_view_angles, random_pixel_mask,
                                sparse_view_angles)


class Blur(torch.nn.Module):
    """Circular convolution with a fixed kernel, per channel: forward only (the adjoint comes from autograd)."""

    def __init__(self, kernel: torch.Tensor):
        super().__init__()
        self.register_buffer("kernel", kernel[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, (kh, kw) = x.shape[1], self.kernel.shape[-2:]
        padded = F.pad(x, (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2), mode="circular")
        return F.conv2d(padded, self.kernel.to(x.dtype).expand(c, 1, kh, kw), groups=c)


def gaussian_kernel(size: int = 5, sigma: float = 1.0) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - size // 2
    k = torch.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * sigma ** 2))
    return (k / k.sum()).float()


class StandInInpainting(torch.nn.Module):
    """deepinv-shaped inpainting physics: y = mask * x; ``forward`` adds Gaussian noise like deepinv's."""

    def __init__(self, mask: torch.Tensor, sigma: float = 0.1):
        super().__init__()
        self.register_buffer("mask", mask.float())
        self.img_size, self.sigma = (1, *mask.shape), sigma

    def A(self, x, **kwargs):  # noqa: N802 (deepinv's name)
        return x * self.mask

    def A_adjoint(self, y, **kwargs):  # noqa: N802
        return y * self.mask

    def A_dagger(self, y, **kwargs):  # noqa: N802
        return y * self.mask

    def forward(self, x, **kwargs):
        return self.A(x) + self.sigma * torch.randn_like(x)


class StandInMRI(torch.nn.Module):
    """deepinv-shaped single-coil MRI on real 2-channel (real, imaginary) images and k-space."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask.float())
        self.img_size = (2, *mask.shape)

    def A(self, x, **kwargs):  # noqa: N802
        k = torch.fft.fftn(torch.complex(x[:, 0], x[:, 1]), dim=(-2, -1), norm="ortho") * self.mask
        return torch.stack([k.real, k.imag], dim=1)

    def A_adjoint(self, y, **kwargs):  # noqa: N802
        x = torch.fft.ifftn(torch.complex(y[:, 0], y[:, 1]) * self.mask, dim=(-2, -1), norm="ortho")
        return torch.stack([x.real, x.imag], dim=1)

    def forward(self, x, **kwargs):
        return self.A(x)


def maps(n_coils: int = 3, n: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_coils, n, n, dtype=torch.complex64, generator=g)


def random_angles(n: int, seed: int = 0, high: float = 2 * math.pi) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, generator=g, dtype=torch.float64) * high


def _mri() -> MRI:
    return MRI(cartesian_mask((16, 16), 4, seed=0))


# name -> (factory, image shape without batch); complex images follow op.complex_images
NAMED = {
    "inpaint-hw": (lambda: Inpainting(random_pixel_mask((16, 16), seed=0)), (2, 16, 16)),
    "inpaint-chw": (lambda: Inpainting(box_mask((3, 16, 16))), (3, 16, 16)),
    "grayscale": (Grayscale, (3, 16, 12)),
    "mri": (_mri, (1, 16, 16)),
    "mri-lines-complex": (lambda: MRI(cartesian_mask((16, 16), 4, seed=0)[:1], complex_images=True), (2, 16, 16)),
    "multicoil": (lambda: MultiCoilMRI(cartesian_mask((16, 16), 2, seed=0), maps()), (1, 16, 16)),
    "multicoil-complex": (lambda: MultiCoilMRI(cartesian_mask((16, 16), 2, seed=0), maps(), complex_images=True),
                          (1, 16, 16)),
    "ct-sparse": (lambda: CT(16, sparse_view_angles(6, 24), full_angles=full_view_angles(24)), (1, 16, 16)),
    "ct-full-odd": (lambda: CT(15, full_view_angles(12), n_detectors=19, full_angles=full_view_angles(12)),
                    (2, 15, 15)),
    "ct-any-angles": (lambda: CT(16, random_angles(9)), (1, 16, 16)),
    "ct-detector": (lambda: CT(15, random_angles(7, 1, math.pi), n_detectors=31, detector_spacing=0.6,
                               detector_center=14.3, circle=False), (1, 15, 15)),
    "ct-fan-flat": (lambda: FanBeamCT(16, random_angles(7, 3), 30.0, 14.0), (1, 16, 16)),
    "ct-fan-curved": (lambda: FanBeamCT(15, random_angles(6, 4), 25.0, 10.0, detector="curved", circle=False,
                                        cache_bytes=0), (1, 15, 15)),
    # cache_bytes=0: the matrix-free path that large transforms (e.g. 512^2 x 720 views) take
    "ct-matrix-free": (lambda: CT(16, random_angles(9), cache_bytes=0), (1, 16, 16)),
    "ct-sparse-matrix-free": (lambda: CT(16, sparse_view_angles(6, 24), full_angles=full_view_angles(24),
                                         cache_bytes=0), (1, 16, 16)),
}
COMPOSED = {
    "mask@fft": (lambda: Mask(cartesian_mask((16, 16), 4, seed=0)) @ FFT(), (1, 16, 16)),
    "coils-stack": (lambda: Stack([Mask(cartesian_mask((16, 16), 2, seed=0)) @ FFT() @ Multiply(m[None], (1, 16, 16))
                                   for m in maps()]), (1, 16, 16)),
    "scaled-sum": (lambda: 2 * _mri() - 0.5 * (_mri() @ Inpainting(box_mask((16, 16)))), (1, 16, 16)),
    "ct-adjoint": (lambda: CT(12, random_angles(5)).H, (1, 5, 12)),
    "ct-normal": (lambda: (lambda a: a.H @ a)(CT(12, random_angles(5, 2))), (1, 12, 12)),
    "blur-module": (lambda: as_operator(Blur(gaussian_kernel()), (1, 16, 16)), (1, 16, 16)),
    "deepinv-inpainting": (lambda: as_operator(StandInInpainting(random_pixel_mask((16, 16), seed=3))), (1, 16, 16)),
    "deepinv-mri": (lambda: as_operator(StandInMRI(cartesian_mask((16, 16), 4, seed=0))), (2, 16, 16)),
}
CASES = {**NAMED, **COMPOSED}
DECOMPOSABLE = ["inpaint-hw", "inpaint-chw", "grayscale", "mri", "mri-lines-complex", "ct-sparse", "ct-full-odd",
                "ct-sparse-matrix-free"]


def make(name: str, dtype: torch.dtype = torch.float64, batch: int = 2, seed: int = 0):
    """(operator in ``dtype``, a random image batch (batch, *shape) in the operator's domain)."""
    factory, shape = CASES[name]
    op = factory().to(dtype)
    return op, random_like_domain((batch, *shape), op.complex_images, dtype, seed)


def random_like_domain(shape, complex_: bool, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if complex_:
        return torch.randn(shape, dtype=torch.complex128 if dtype == torch.float64 else torch.complex64, generator=g)
    return torch.randn(shape, dtype=dtype, generator=g)

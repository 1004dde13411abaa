"""Multi-coil (SENSE) Cartesian MRI: y_c = M F (S_c x), composed from primitives; coil combination helpers."""
from __future__ import annotations

import torch

from scoremed.errors import InputError

from .base import LinearOperator, Shape
from .checks import describe
from .mri import check_kspace_mask
from .primitives import FFT, Mask, Multiply


def rss(coil_images: torch.Tensor, dim: int = 1, keepdim: bool = True) -> torch.Tensor:
    """Root-sum-of-squares over the coil dim: (B, Ncoil, H, W) -> (B, 1, H, W), real."""
    return coil_images.abs().square().sum(dim=dim, keepdim=keepdim).sqrt()


def sense_combine(coil_images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """SENSE combination sum_c conj(S_c) x_c / sum_c |S_c|^2 (0 where the maps vanish).

    ``coil_images`` (B, Ncoil, H, W) complex, ``maps`` (Ncoil, H, W) complex -> (B, 1, H, W).
    """
    if maps.shape != coil_images.shape[1:]:
        raise InputError(f"maps: expected shape {tuple(coil_images.shape[1:])} to match coil_images, "
                         f"got {describe(maps)}")
    num = (maps.conj() * coil_images).sum(dim=1, keepdim=True)
    den = maps.abs().square().sum(dim=0)
    return torch.where(den > 0, num / torch.where(den > 0, den, 1), 0)


def estimate_sensitivities(kspace: torch.Tensor, calib_width: int = 24, thresh: float = 0.02,
                           crop: float = 0.95, max_iter: int = 100) -> torch.Tensor:
    """ESPIRiT coil maps (``sigpy.mri.app.EspiritCalib``) from centred k-space (Ncoil, H, W).

    Runs with NumPy on the CPU; returns complex64 maps (Ncoil, H, W) on kspace's device.
    """
    if not (isinstance(kspace, torch.Tensor) and kspace.is_complex() and kspace.ndim == 3):
        got = describe(kspace) if isinstance(kspace, torch.Tensor) else type(kspace).__name__
        raise InputError(f"kspace: expected complex k-space of shape (Ncoil, H, W), got {got}")
    if not (isinstance(calib_width, int) and 1 <= calib_width <= min(kspace.shape[1:])):
        raise InputError(f"calib_width: expected an int in [1, {min(kspace.shape[1:])}], got {calib_width!r}")
    import sigpy.mri  # deferred: importing sigpy takes ~2 s

    ksp = kspace.detach().cpu().to(torch.complex64).numpy()
    maps = sigpy.mri.app.EspiritCalib(ksp, calib_width=calib_width, thresh=thresh, crop=crop,
                                      max_iter=max_iter, show_pbar=False).run()
    return torch.from_numpy(maps).to(device=kspace.device, dtype=torch.complex64)


class MultiCoilMRI(LinearOperator):
    """A = M F S: image (B, 1, H, W) -> coil k-space (B, Ncoil, H, W), complex, zero where unsampled.

    Composed as ``Mask(mask) @ FFT() @ Multiply(maps)``: the coil multiply expands one
    image into Ncoil coil images (the stack of the per-coil products S_c x), the FFT and
    the mask act on every coil. ``mask``: (H, W) or (1, W) lines; ``sensitivity_maps``:
    (Ncoil, H, W) complex, stored as a real view so ``.to(dtype)`` keeps them. With real
    images (default) ``adjoint`` and ``pseudo_inverse`` return the real part; use
    ``complex_images=True`` when the maps' phase does not make the object real.
    """

    kind = "mri-multicoil"
    measurement_name = "k-space"
    complex_measurement = True
    needs_full_precision = True
    #: the channels of y are the coils of one image
    multicoil = True

    def __init__(self, mask: torch.Tensor, sensitivity_maps: torch.Tensor, complex_images: bool = False):
        super().__init__()
        mask = check_kspace_mask(mask)
        maps = sensitivity_maps
        if not (isinstance(maps, torch.Tensor) and maps.is_complex() and maps.ndim == 3):
            got = describe(maps) if isinstance(maps, torch.Tensor) else type(maps).__name__
            raise InputError(f"sensitivity_maps: expected complex maps of shape (Ncoil, H, W), got {got}")
        if mask.shape[1] != maps.shape[2] or mask.shape[0] not in (1, maps.shape[1]):
            raise InputError(f"mask: expected shape {tuple(maps.shape[1:])} or (1, {maps.shape[2]}) to match "
                             f"sensitivity_maps {tuple(maps.shape)}, got {describe(mask)}")
        self.coils = Multiply(maps, image_shape=(1, *maps.shape[1:]))
        self.sampling, self.fft = Mask(mask), FFT()
        self.op = self.sampling @ self.fft @ self.coils
        self.complex_images = bool(complex_images)

    @property
    def mask(self) -> torch.Tensor:
        """The sampling mask (H, W) or (1, W)."""
        return self.sampling.mask

    @property
    def maps(self) -> torch.Tensor:
        """Sensitivity maps (Ncoil, H, W), complex."""
        return self.coils.weight

    @property
    def image_shape(self) -> Shape:
        return self.op.image_shape

    @property
    def measurement_shape(self) -> Shape:
        return self.op.measurement_shape

    def pseudo_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """SENSE combination of the zero-filled coil images."""
        y = self.check_measurement(y)
        coil_images = self.fft.adjoint(self.sampling(y))
        return self._image_output(sense_combine(coil_images, self.coils.weight_for(y)))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_coils={self.maps.shape[0]}, complex_images={self.complex_images}"

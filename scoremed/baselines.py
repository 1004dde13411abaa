"""Classical reconstructions that scoremed is compared with, taken from established libraries.

- MRI (single- and multi-coil): L1-wavelet regularised SENSE, ``sigpy.mri.app.L1WaveletRecon``.
- CT: SART, ``skimage.transform.iradon_sart`` (started from nothing, ``iterations`` passes).
- Inpainting: biharmonic, ``skimage.restoration.inpaint_biharmonic``.
- Colorization: the gray image copied to R, G and B.
All take the measurement y and the operator and return images (B, C, H, W) on y's device.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from scoremed.errors import InputError

#: human-readable name of the classical baseline per operator kind
CLASSICAL_NAMES = {"mri": "L1-wavelet (sigpy)", "mri-multicoil": "L1-wavelet SENSE (sigpy)",
                   "ct": "SART (skimage)", "inpaint": "biharmonic (skimage)", "colorize": "gray copy"}


def _l1_wavelet(y: torch.Tensor, operator, lamda: float, max_iter: int) -> torch.Tensor:
    import sigpy.mri.app

    kspace = y.detach().cpu().numpy()
    if operator.kind == "mri":
        maps = np.ones((1, *kspace.shape[-2:]), dtype=np.complex64)
        mask = operator.mask.detach().cpu().numpy()
    else:
        maps = operator.maps.detach().cpu().numpy()
        mask = operator.mask.detach().cpu().numpy()
    out = []
    for b in range(kspace.shape[0]):
        channels = []
        coil_stacks = [kspace[b]] if operator.kind == "mri-multicoil" else [kspace[b, c:c + 1] for c in range(kspace.shape[1])]
        for ksp in coil_stacks:
            weights = np.broadcast_to(mask, ksp.shape[-2:]).astype(np.float32)
            app = sigpy.mri.app.L1WaveletRecon(ksp, maps, lamda, weights=weights, max_iter=max_iter, show_pbar=False)
            image = app.run()
            channels.append(np.abs(image) if not operator.complex_images else image)
        out.append(np.stack(channels))
    return torch.from_numpy(np.stack(out)).to(y.device)


def _sart(y: torch.Tensor, operator, iterations: int) -> torch.Tensor:
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


def _biharmonic(y: torch.Tensor, operator) -> torch.Tensor:
    from skimage.restoration import inpaint_biharmonic

    data = y.detach().cpu().double().numpy()
    known = np.broadcast_to(operator.mask.detach().cpu().numpy(), data.shape[1:]).astype(bool)
    missing = ~known.all(axis=0)  # a pixel missing in any channel is inpainted
    out = np.stack([inpaint_biharmonic(np.moveaxis(image, 0, -1), missing, channel_axis=-1) for image in data])
    return torch.from_numpy(np.moveaxis(out, -1, 1)).float().to(y.device)


def classical_reconstruction(y: torch.Tensor, operator, *, l1_lambda: float = 1e-3, l1_iterations: int = 100,
                             sart_iterations: int = 5) -> torch.Tensor:
    """The classical baseline for ``operator.kind`` (see the module docstring)."""
    kind = getattr(operator, "kind", "")
    if kind in ("mri", "mri-multicoil"):
        return _l1_wavelet(y, operator, l1_lambda, l1_iterations)
    if kind == "ct":
        return _sart(y, operator, sart_iterations)
    if kind == "inpaint":
        return _biharmonic(y, operator)
    if kind == "colorize":
        return operator.pseudo_inverse(y)
    raise InputError(f"operator: no classical baseline for kind {kind!r}; known: {sorted(CLASSICAL_NAMES)}")


def image_metrics(truth: torch.Tensor, estimate: torch.Tensor, data_range: float = 1.0) -> dict[str, float]:
    """PSNR (dB) and SSIM with skimage.metrics on images (C, H, W) with a fixed data range."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = truth.detach().cpu().double().numpy()
    b = np.clip(estimate.detach().cpu().double().numpy(), 0.0, data_range)
    psnr = peak_signal_noise_ratio(a, b, data_range=data_range)
    ssim = structural_similarity(a, b, data_range=data_range, channel_axis=0)
    return {"psnr": float(psnr) if math.isfinite(psnr) else 100.0, "ssim": float(ssim)}

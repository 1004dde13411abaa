"""Undersampled MRI: Cartesian (random or equispaced lines) or Poisson-disc masks on the image grid,
the shipped ``mri-brain`` prior, and three classical baselines: L1-wavelet and total variation with
sigpy (``sigpy.mri.app.L1WaveletRecon`` / ``TotalVariationRecon``, complex images, SENSE for
multi-coil data) and total variation of real non-negative images (:func:`scoremed.tasks.classical.tv_pdhg`);
PnP-BM3D (:mod:`scoremed.tasks.pnp`, real images) in a comparison row of its own.

Also the operators for measured k-space: single-coil on a given mask, and multi-coil with
ESPIRiT coil maps (:func:`coil_operator`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from scoremed.errors import InputError
from scoremed.tasks import pnp
from scoremed.tasks.base import Baseline, Task, check_choice, option
from scoremed.tasks.classical import tv_pdhg

log = logging.getLogger("scoremed")

MASKS = ("random", "equispaced", "poisson")
ESPIRIT_MIN_CALIB = 12  # fully sampled centre lines for ESPIRiT (6-wide kernels); fewer -> low-res maps


@dataclass
class Options:
    accel: float = option(4.0, "acceleration")
    center_fraction: float = option(0.08, "fully sampled centre fraction (random, equispaced)")
    mask: str = option("random", "random | equispaced | poisson")
    seed: int = option(0, "mask seed")


def make_mask(size: tuple[int, int], options: Options) -> torch.Tensor:
    """The sampling mask on a k-space grid ``size`` = (H, W): (1, W) lines or (H, W) Poisson disc."""
    from scoremed.operators import cartesian_mask, poisson_mask

    check_choice(options.mask, "mask", MASKS)
    if options.mask == "poisson":
        return poisson_mask(size, options.accel, calib=max(4, min(size) // 8), seed=options.seed)
    return cartesian_mask(size, options.accel, center_fraction=options.center_fraction, kind=options.mask,
                          seed=options.seed)


def make_operator(image_shape: tuple[int, int, int], options: Options):
    """Single-coil MRI with the options' mask for images (C, H, W)."""
    return measured_operator(make_mask(tuple(image_shape[-2:]), options))


def measured_operator(mask: torch.Tensor):
    """Single-coil MRI on a given sampling mask ((1, W) or (H, W))."""
    from scoremed.operators import MRI

    return MRI(mask)


def calibration_width(mask: torch.Tensor) -> int:
    """Width of the largest centred square block that ``mask`` (H, W) samples completely."""
    h, w = mask.shape[-2:]
    r, c = h // 2, w // 2
    width = 0
    for half in range(1, min(h, w) // 2 + 1):
        block = mask[..., r - half:r + half, c - half:c + half]
        if block.shape[-1] != 2 * half or not bool((block > 0).all()):
            break
        width = 2 * half
    return width


def _calibration_image(kspace: torch.Tensor, mask: torch.Tensor, calib: int) -> torch.Tensor:
    """Coil images (coils, H, W) of the fully sampled centre only (a low-resolution estimate)."""
    from scoremed.operators.mri import ifft2c

    r, c, half = mask.shape[-2] // 2, mask.shape[-1] // 2, max(calib // 2, 1)
    low = torch.zeros_like(kspace)
    rows = slice(0, None) if bool((mask == mask[:1]).all()) else slice(r - half, r + half)
    low[..., rows, c - half:c + half] = kspace[..., rows, c - half:c + half]
    return ifft2c(low)


def coil_operator(kspace: torch.Tensor, mask: torch.Tensor, multicoil: bool, argument: str = "kspace"):
    """``MultiCoilMRI`` for one slice of measured k-space (coils, H, W) on mask (H, W): ESPIRiT maps
    (multi-coil) or one unit map, with the calibration image's phase absorbed so the object is real."""
    from scoremed.operators import MultiCoilMRI, estimate_sensitivities, rss

    calib = calibration_width(mask)
    if multicoil and calib == 0:
        raise InputError(f"{argument}: multi-coil data need a fully sampled k-space centre to estimate coil "
                         "sensitivities; the mask samples none")
    low = _calibration_image(kspace, mask, calib) if calib > 0 else None
    if not multicoil:
        maps = torch.ones_like(kspace)
    else:
        maps = estimate_sensitivities(kspace, calib_width=min(calib, 24)) if calib >= ESPIRIT_MIN_CALIB else None
        if maps is None or not bool((maps.abs() > 0).any()):
            # too few centre lines for ESPIRiT's 6-wide kernels: normalised low-resolution coil images
            log.warning("%s: %d fully sampled centre lines on the %d-grid are too few for ESPIRiT (needs >= %d); "
                        "coil maps from the low-resolution coil images", argument, calib, mask.shape[-1],
                        ESPIRIT_MIN_CALIB)
            norm = rss(low, dim=0)
            maps = torch.where(norm > 0.05 * norm.max(), low / norm.clamp_min(1e-12), 0)
    if low is not None:
        combined = (maps.conj() * low).sum(0)
        maps = maps * torch.exp(1j * torch.angle(combined)).to(maps.dtype)
    return MultiCoilMRI(mask, maps.to(torch.complex64))


def _sigpy_apps(app_class, y: torch.Tensor, operator, lamda: float, max_iter: int, **kwargs) -> list:
    """One sigpy MRI app per image and channel (single-coil) or coil stack (multi-coil), in batch order."""
    kspace = y.detach().cpu().numpy()
    multicoil = operator.multicoil
    maps = operator.maps.detach().cpu().numpy() if multicoil else np.ones((1, *kspace.shape[-2:]), np.complex64)
    weights = np.broadcast_to(operator.mask.detach().cpu().numpy(), kspace.shape[-2:]).astype(np.float32)
    stacks = [kspace[b] for b in range(len(kspace))] if multicoil else \
        [kspace[b, c:c + 1] for b in range(len(kspace)) for c in range(kspace.shape[1])]
    return [app_class(ksp, maps, lamda, weights=weights, max_iter=max_iter, show_pbar=False, **kwargs)
            for ksp in stacks]


def _run_sigpy(apps: list, y: torch.Tensor, operator, callback=None) -> torch.Tensor:
    """Step every app in lockstep (``callback(i, images)`` after iteration i); images (B, C, H, W) on y's device."""
    channels = 1 if operator.multicoil else y.shape[1]

    def images() -> torch.Tensor:
        out = np.stack([app.x if operator.complex_images else np.abs(app.x) for app in apps])
        return torch.from_numpy(out.reshape(y.shape[0], channels, *out.shape[-2:])).to(y.device)

    i = 0
    while not all(app.alg.done() for app in apps):
        i += 1
        for app in apps:
            if not app.alg.done():
                app.alg.update()
        if callback is not None:
            callback(i, images())
    return images()


def l1_wavelet(y: torch.Tensor, operator, lamda: float = 1e-3, max_iter: int = 100, callback=None) -> torch.Tensor:
    """L1-wavelet regularised (SENSE) reconstruction with sigpy (db4 wavelets, proximal gradient), per image
    and channel / coil stack; magnitude images unless the operator has complex images."""
    import sigpy.mri.app

    return _run_sigpy(_sigpy_apps(sigpy.mri.app.L1WaveletRecon, y, operator, lamda, max_iter), y, operator, callback)


def tv_sigpy(y: torch.Tensor, operator, lamda: float = 1e-3, max_iter: int = 100, sigma: float | None = None,
             callback=None) -> torch.Tensor:
    """Anisotropic-TV regularised (SENSE) reconstruction of complex images with sigpy's primal-dual solver
    (dual step ``sigma``; None: sigpy's default 1); magnitude images unless the operator has complex images."""
    import sigpy.mri.app

    kwargs = {} if sigma is None else {"sigma": sigma}
    return _run_sigpy(_sigpy_apps(sigpy.mri.app.TotalVariationRecon, y, operator, lamda, max_iter, **kwargs),
                      y, operator, callback)


def applies_to_real_images(operator) -> bool:
    """TV of real images needs an operator on real images."""
    return not operator.complex_images


BASELINES = (
    Baseline("l1-wavelet", "L1-wavelet (sigpy)", l1_wavelet, untuned={"lamda": 1e-3, "max_iter": 100},
             grid={"lamda": [3e-4, 1e-3, 3e-3], "max_iter": [25, 50, 100, 200]}, steps="max_iter"),
    Baseline("tv-sigpy", "TV, complex (sigpy)", tv_sigpy, untuned={"lamda": 1e-3, "max_iter": 100},
             grid={"lamda": [3e-3, 1e-2, 3e-2], "sigma": [0.1], "max_iter": [200, 400, 800]}, steps="max_iter"),
    Baseline("tv", "TV, real x >= 0 (PDHG)", tv_pdhg, untuned={"weight": 1e-3, "iterations": 200},
             grid={"weight": [3e-4, 1e-3, 3e-3, 1e-2], "iterations": [100, 200, 400, 800]}, steps="iterations",
             applies=applies_to_real_images),
    # from TV, 10 iterations: 23.5 dB against TV's 22.3 on two 64^2 validation slices (from the zero-filled
    # image 21.6); at 256^2 the TV start won every pair (by 2.6-7.6 dB) and the largest sigmas won twice (start
    # 0.1 / 0.5, end 0.02 / 0.1, then start 0.5 / 1, end 0.05 / 0.1 / 0.2: 0.5 / 0.2), so the grid reaches past them
    pnp.baseline({"start": ["classical"], "sigma_start": [0.5, 1.0], "sigma_end": [0.2, 0.35],
                  "weight": [1e-3]}, start="classical", sigma_start=0.3, sigma_end=0.05, weight=1e-3),
)


TASK = Task(name="mri", summary="undersampled MRI (single-coil simulation; measured single- or multi-coil k-space)",
            options=Options, build=make_operator, baselines=BASELINES, kinds=("mri", "mri-multicoil"),
            default_prior="mri-brain", medical=True, measured_data=("kspace",))

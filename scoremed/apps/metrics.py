"""Image quality against a known truth: PSNR (dB) and SSIM with ``skimage.metrics``, data range 1."""
from __future__ import annotations

import math

import numpy as np
import torch

#: PSNR reported for an exact reconstruction (infinite PSNR)
PSNR_EXACT = 100.0


def image_metrics(truth: torch.Tensor, estimate: torch.Tensor, data_range: float = 1.0) -> dict[str, float]:
    """PSNR and SSIM of one image (C, H, W); the estimate is clipped to [0, data_range]."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = truth.detach().cpu().double().numpy()
    b = np.clip(estimate.detach().cpu().double().numpy(), 0.0, data_range)
    with np.errstate(divide="ignore"):   # an exact estimate: infinite PSNR, reported as PSNR_EXACT
        psnr = peak_signal_noise_ratio(a, b, data_range=data_range)
    ssim = structural_similarity(a, b, data_range=data_range, channel_axis=0)
    return {"psnr": float(psnr) if math.isfinite(psnr) else PSNR_EXACT, "ssim": float(ssim)}


def batch_metrics(truth: torch.Tensor, estimate: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image PSNR and SSIM of a batch (B, C, H, W): arrays of shape (B,)."""
    per = [image_metrics(t, e) for t, e in zip(truth, estimate)]
    return {key: np.array([m[key] for m in per]) for key in ("psnr", "ssim")}


def mean_metrics(truth: torch.Tensor, estimate: torch.Tensor) -> dict[str, float]:
    """PSNR and SSIM averaged over the images of a batch (B, C, H, W)."""
    return {key: float(values.mean()) for key, values in batch_metrics(truth, estimate).items()}


def stack_metrics(truth: torch.Tensor, estimate: torch.Tensor) -> tuple[dict, list[dict]]:
    """Metrics of a slice stack (N, C, H, W): PSNR over all voxels, SSIM and PSNR averaged over slices,
    and the per-slice values."""
    per = batch_metrics(truth, estimate)
    mse = float(((truth.double() - estimate.double().clamp(0, 1)) ** 2).mean())
    volume = {"psnr": 10 * math.log10(1.0 / mse) if mse > 0 else PSNR_EXACT, "ssim": float(per["ssim"].mean()),
              "psnr_slice_mean": float(per["psnr"].mean()), "slices": len(per["psnr"])}
    return volume, [{"slice": i, "psnr": float(p), "ssim": float(s)}
                    for i, (p, s) in enumerate(zip(per["psnr"], per["ssim"]))]

"""k-space sampling masks (1 = sampled) in the centred layout of ``fft2c`` (DC at H//2, W//2)."""
from __future__ import annotations

import torch

from scoremed.errors import InputError


def _check_shape(shape: object) -> tuple[int, int]:
    if not (isinstance(shape, (tuple, list, torch.Size)) and len(shape) == 2
            and all(isinstance(s, int) and s >= 1 for s in shape)):
        raise InputError(f"shape: expected (H, W) positive ints, got {shape!r}")
    return tuple(shape)


def _check_accel(accel: object) -> float:
    if not (isinstance(accel, (int, float)) and accel >= 1):
        raise InputError(f"accel: expected an acceleration factor >= 1, got {accel!r}")
    return float(accel)


def cartesian_mask(shape: tuple[int, int], accel: float, center_fraction: float = 0.08,
                   kind: str = "random", seed: int | None = None) -> torch.Tensor:
    """Float32 (H, W) mask of whole phase-encode lines (columns along W, like fastMRI).

    Keeps round(W * center_fraction) centre lines and adds random (``kind="random"``) or
    evenly spaced (``kind="equispaced"``) lines up to round(W / accel) lines in total.
    """
    h, w = _check_shape(shape)
    accel = _check_accel(accel)
    if not (isinstance(center_fraction, (int, float)) and 0 <= center_fraction <= 1):
        raise InputError(f"center_fraction: expected a number in [0, 1], got {center_fraction!r}")
    if kind not in ("random", "equispaced"):
        raise InputError(f"kind: expected 'random' or 'equispaced', got {kind!r}")
    n_lines, n_center = round(w / accel), round(w * center_fraction)
    if n_lines < max(n_center, 1):
        raise InputError(f"accel: expected at most {w / max(n_center, 1):.3g} for W={w} and "
                         f"center_fraction={center_fraction} ({max(n_center, 1)} lines), got {accel}")
    start = w // 2 - n_center // 2
    lines = torch.zeros(w, dtype=torch.bool)
    lines[start:start + n_center] = True
    outside = torch.nonzero(~lines).flatten()
    n_extra = n_lines - n_center
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    if kind == "random":
        picked = outside[torch.randperm(len(outside), generator=gen)[:n_extra]]
    elif n_extra > 0:
        step = len(outside) // n_extra
        offset = int(torch.randint(step, (1,), generator=gen))
        picked = outside[torch.arange(n_extra) * len(outside) // n_extra + offset]
    else:
        picked = outside[:0]
    lines[picked] = True
    return lines.to(torch.float32).expand(h, w).clone()


def poisson_mask(shape: tuple[int, int], accel: float, calib: int | tuple[int, int] = 24,
                 seed: int | None = None) -> torch.Tensor:
    """Float32 (H, W) variable-density Poisson-disc mask (``sigpy.mri.poisson``).

    ``calib``: size of the fully sampled centre, an int or (h, w). sigpy matches the
    acceleration to within 0.1.
    """
    h, w = _check_shape(shape)
    accel = _check_accel(accel)
    calib = (calib, calib) if isinstance(calib, int) else calib
    if not (isinstance(calib, (tuple, list)) and len(calib) == 2
            and all(isinstance(c, int) and 0 <= c <= s for c, s in zip(calib, (h, w)))):
        raise InputError(f"calib: expected an int or (h, w) within the shape {(h, w)}, got {calib!r}")
    if accel == 1:
        return torch.ones(h, w)
    import sigpy.mri  # deferred: importing sigpy takes ~2 s

    try:
        mask = sigpy.mri.poisson((h, w), accel, calib=tuple(calib), seed=seed)
    except ValueError as err:
        raise InputError(f"accel: expected an acceleration reachable for shape {(h, w)} "
                         f"with calib={tuple(calib)}, got {accel} ({err})") from err
    return torch.from_numpy(abs(mask)).to(torch.float32)

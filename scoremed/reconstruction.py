"""The reconstruction job behind ``reconstruct.py``: build the operator, run direct, classical and
scoremed reconstructions, score them and draw the comparison figure."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from scoremed.baselines import CLASSICAL_NAMES, classical_reconstruction, image_metrics
from scoremed.errors import InputError
from scoremed.io_atomic import atomic_write
from scoremed.prior import ScorePrior
from scoremed.solve import sample_posterior

OPS = ("mri", "ct", "inpaint", "colorize")
#: shipped prior and test image used by each task when the user gives none
DEFAULT_PRIOR_FOR_OP = {"mri": "mri-brain", "ct": "ct-phantom", "inpaint": "natural", "colorize": "natural"}


@dataclass
class OperatorOptions:
    accel: float = 4.0
    center_fraction: float = 0.08
    mask: str = "random"          # MRI: random | equispaced | poisson
    views: int = 23               # CT: measured views out of 180
    mask_kind: str = "box"        # inpainting: box | random | half
    seed: int = 0


def make_operator(op: str, image_shape: tuple[int, ...], options: OperatorOptions):
    """The forward operator of task ``op`` for images (C, H, W)."""
    from scoremed import operators as ops

    size = tuple(image_shape[-2:])
    if op == "mri":
        if options.mask == "poisson":
            mask = ops.poisson_mask(size, options.accel, calib=max(4, min(size) // 8), seed=options.seed)
        elif options.mask in ("random", "equispaced"):
            mask = ops.cartesian_mask(size, options.accel, center_fraction=options.center_fraction,
                                      kind=options.mask, seed=options.seed)
        else:
            raise InputError(f"--mask: expected random, equispaced or poisson, got {options.mask!r}")
        return ops.MRI(mask)
    if op == "ct":
        if size[0] != size[1]:
            raise InputError(f"--op ct: expected square images, got {size}")
        return ops.CT(size[0], ops.sparse_view_angles(options.views))
    if op == "inpaint":
        makers = {"box": lambda: ops.box_mask(size), "half": lambda: ops.half_mask(size),
                  "random": lambda: ops.random_pixel_mask(size, missing_fraction=0.7, seed=options.seed)}
        if options.mask_kind not in makers:
            raise InputError(f"--mask-kind: expected one of {sorted(makers)}, got {options.mask_kind!r}")
        return ops.Inpainting(makers[options.mask_kind]())
    if op == "colorize":
        return ops.Grayscale()
    raise InputError(f"--op: expected one of {list(OPS)}, got {op!r}")


@dataclass
class MethodResult:
    label: str
    image: torch.Tensor                      # (B, C, H, W)
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run_comparison(y: torch.Tensor, operator, prior: ScorePrior, truth: torch.Tensor | None = None,
                   n_samples: int = 1, **solve_options) -> tuple[dict[str, MethodResult], torch.Tensor | None]:
    """Direct, classical and scoremed reconstructions of y; metrics when ``truth`` is given.

    Returns the results by method name and the pixelwise posterior std (None for one sample).
    """
    direct, t_direct = _timed(lambda: operator.pseudo_inverse(y))
    classical, t_classical = _timed(lambda: classical_reconstruction(y, operator))
    samples, t_score = _timed(lambda: sample_posterior(y, operator, n_samples, prior=prior, **solve_options))
    results = {
        "direct": MethodResult("direct (zero-filled / FBP / masked)", direct, t_direct),
        "classical": MethodResult(CLASSICAL_NAMES.get(operator.kind, "classical"), classical, t_classical),
        "scoremed": MethodResult(f"scoremed ({solve_options.get('method', 'consistency')})", samples.mean(0), t_score),
    }
    if truth is not None:
        for result in results.values():
            per_image = [image_metrics(t, r) for t, r in zip(truth, result.image)]
            result.metrics = {k: sum(m[k] for m in per_image) / len(per_image) for k in ("psnr", "ssim")}
    std = samples.std(0) if n_samples > 1 else None
    return results, std


def metrics_table(results: dict[str, MethodResult]) -> str:
    rows = [f"{'method':<10} {'what':<38} {'PSNR dB':>8} {'SSIM':>7} {'seconds':>8}"]
    for name, r in results.items():
        psnr = f"{r.metrics['psnr']:.2f}" if r.metrics else "-"
        ssim = f"{r.metrics['ssim']:.4f}" if r.metrics else "-"
        rows.append(f"{name:<10} {r.label:<38} {psnr:>8} {ssim:>7} {r.seconds:>8.2f}")
    return "\n".join(rows)


def _display(image: torch.Tensor):
    array = image.detach().cpu().clamp(0, 1).numpy()
    return (array[0], "gray") if array.shape[0] == 1 else (array.transpose(1, 2, 0), None)


def save_figure(path: str | Path, results: dict[str, MethodResult], truth: torch.Tensor | None,
                std: torch.Tensor | None, index: int = 0) -> None:
    """Side-by-side PNG: truth | direct | classical | scoremed | |error| | std (what is available)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if truth is not None:
        panels.append(("truth", *_display(truth[index])))
    for r in results.values():
        title = r.label + (f"\n{r.metrics['psnr']:.1f} dB / {r.metrics['ssim']:.3f}" if r.metrics else "")
        panels.append((title, *_display(r.image[index])))
    if truth is not None:
        error = (results["scoremed"].image[index] - truth[index]).abs().mean(0).cpu().numpy()
        panels.append(("|error| scoremed", error, "magma"))
    if std is not None:
        panels.append(("posterior std", std[index].mean(0).cpu().numpy(), "viridis"))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0))
    for ax, (title, array, cmap) in zip(axes, panels):
        ax.imshow(array, cmap=cmap, vmin=0 if cmap == "gray" else None, vmax=1 if cmap == "gray" else None)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110), suffix=".png")
    plt.close(fig)

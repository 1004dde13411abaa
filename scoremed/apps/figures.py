"""The comparison figure: truth | direct | classical | scoremed | |error| | posterior std."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from scoremed.io.atomic import atomic_write


PANEL_INCHES = 2.6     #: width of one panel
AXES_FRACTION = 0.85   #: of a panel's width taken by the image (titles and tight_layout margins aside)
MIN_DPI = 110


def _display(image: torch.Tensor):
    array = image.detach().cpu().clamp(0, 1).numpy()
    return (array[0], "gray") if array.shape[0] == 1 else (array.transpose(1, 2, 0), None)


def save_figure(path: str | Path, results: dict, truth: torch.Tensor | None,
                std: torch.Tensor | None, index: int = 0) -> None:
    """Side-by-side PNG: truth | direct | classical | scoremed | |error| | std (what is available), each
    panel with at least one figure pixel per image pixel (the figure is at the images' resolution)."""
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
    fig, axes = plt.subplots(1, len(panels), figsize=(PANEL_INCHES * len(panels), PANEL_INCHES + 0.4), squeeze=False)
    for ax, (title, array, cmap) in zip(axes[0], panels):
        ax.imshow(array, cmap=cmap, vmin=0 if cmap == "gray" else None, vmax=1 if cmap == "gray" else None)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    dpi = max(MIN_DPI, math.ceil(max(panels[0][1].shape[:2]) / (AXES_FRACTION * PANEL_INCHES)))
    atomic_write(path, lambda p: fig.savefig(p, dpi=dpi), suffix=".png")
    plt.close(fig)

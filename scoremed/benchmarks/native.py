"""The native-resolution benchmark (``scoremed benchmark native``): held-out and real images at their own grid.

Two kinds of rows per task: the prior's held-out test split rendered at native resolution
(``get_dataset(prior, "test", image_size=None)``: 256 x 256 brain slices, 512 x 512 phantoms,
256 x 256 photograph crops) and, for MRI and CT, every real image of
:mod:`scoremed.benchmarks.real_images` (scans no one here trained or tuned on). Methods: direct,
the strongest tuned classical one, PnP-BM3D when the bm3d package is installed (a note otherwise) and
scoremed's. Each row also gives seconds per image and the process's peak resident memory after the row.
"""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import torch

from scoremed.benchmarks.quality import HEADER, TASKS as QUALITY_TASKS, Task, compare_methods
from scoremed.benchmarks.real_images import real_images
from scoremed.benchmarks.report import markdown_table
from scoremed.priors import load_prior, shipped_prior

#: the quality benchmark's tasks that are run at native resolution
NATIVE = ("mri-4x", "mri-8x", "ct-23-views", "ct-12-views", "inpaint-random-70", "colorize")
TASKS = [task for task in QUALITY_TASKS if task.name in NATIVE]
NATIVE_HEADER = [*HEADER, "peak RSS GB"]


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 2**20 if sys.platform != "darwin" else kb / 2**30


def run_native_task(task: Task, n_images: int, nfe_levels: dict[str, list[int]], figure_dir: Path | None,
                    device=None, seed: int = 0, real: bool = True) -> list[list[object]]:
    """Rows of ``task`` on ``n_images`` native test images, then on each real image of its prior's modality
    (its ``real_images``)."""
    from scoremed.data import get_dataset

    prior = load_prior(task.prior, device=device)
    test = get_dataset(task.prior, "test", image_size=None)
    sets = {f"{task.name} (test split)": torch.stack([test[i] for i in range(min(n_images, len(test)))])}
    modality = shipped_prior(task.prior).real_images
    if real and modality is not None:
        sets.update({f"{task.name} ({name})": image[None] for name, image in real_images(modality).items()})
    rows = []
    for label, truth in sets.items():
        size = "x".join(map(str, truth.shape[-2:]))
        figure = None
        if figure_dir is not None:
            figure = figure_dir / f"native-{label.replace(' (', '-').replace(')', '').replace(' ', '-')}.png"
        for row in compare_methods(task, f"{label} {size}", truth.to(prior.device), prior, nfe_levels, figure,
                                   seed, std_samples=0, extra_baselines=True):
            rows.append([*row, f"{peak_rss_gb():.2f}"])
    return rows


def native_markdown(rows: list[list[object]], n_images: int, note: str) -> str:
    return (f"## Native resolution (`scoremed benchmark native`)\n\n{note}\n\n"
            f"Each task on {n_images} held-out test images of the prior's own data at native resolution, "
            "then on real MR/CT images shipped inside Python packages (never used for training or tuning; "
            "`scoremed/benchmarks/real_images.py`), each at the grid it was acquired on. Classical = the "
            "strongest tuned classical method of the task; PnP-BM3D (ADMM, ten BM3D calls, tuned on validation "
            "images like the others) has a row of its own when the bm3d package is installed. Peak RSS is the "
            "process's peak so far.\n\n"
            + markdown_table(NATIVE_HEADER, rows))


def run(n_images: int, nfe_levels: dict[str, list[int]], tasks: list[str], report, section: str, figure_dir,
        note: str = "", device=None, real: bool = True) -> list[list[object]]:
    """Run the chosen tasks, writing the report section after each one; returns all rows."""
    from scoremed.benchmarks.report import write_report_section

    rows, start = [], time.perf_counter()
    chosen = [t for t in TASKS if t.name in tasks]
    for task in chosen:
        task_rows = run_native_task(task, n_images, nfe_levels, Path(figure_dir) if figure_dir else None, device,
                                    real=real)
        print(markdown_table(NATIVE_HEADER, task_rows), flush=True)
        rows += task_rows
        done = "complete" if task is chosen[-1] else f"partial: up to {task.name}"
        text = (note + " " if note else "") + f"Benchmark time {time.perf_counter() - start:.0f} s ({done})."
        write_report_section(report, section, native_markdown(rows, n_images, text))
    return rows

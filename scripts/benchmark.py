#!/usr/bin/env python
"""Reconstruction-quality benchmark: direct vs classical vs scoremed on held-out test images.

Writes the table to docs/benchmarks.md (section "quality") and one figure per task to
docs/figures/. ``--quick`` runs a few images at one NFE level in a few minutes.
"""
import argparse
import time
from pathlib import Path

import torch

from scoremed.benchmark_quality import TASKS, benchmark_markdown, run_task, HEADER
from scoremed.cli.common import run_cli
from scoremed.report import markdown_table, write_report_section


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="4 images, 200 NFE, consistency only")
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--nfe", type=int, nargs="+", default=[100, 200, 500, 1000])
    p.add_argument("--nfe-other", type=int, nargs="+", default=None,
                   help="NFE levels of the methods other than consistency (default: --nfe)")
    p.add_argument("--methods", nargs="+", default=["consistency", "projection", "dps"])
    p.add_argument("--tasks", nargs="+", default=[t.name for t in TASKS])
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--section", default="quality", help="report section name (lets parallel runs share the file)")
    p.add_argument("--note", default="", help="free text recorded above the table (machine, load)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.images, args.nfe, args.methods = 4, [200], ["consistency"]
    args.tasks = [t.name for t in TASKS if t.name in args.tasks]
    figure_dir = Path("docs/figures")
    rows, start = [], time.perf_counter()
    for task in [t for t in TASKS if t.name in args.tasks]:
        levels = {m: args.nfe if m == "consistency" or args.nfe_other is None else args.nfe_other for m in args.methods}
        task_rows = run_task(task, args.images, levels, figure_dir, device=args.device)
        print(markdown_table(HEADER, task_rows), flush=True)
        rows += task_rows
        done = "complete" if task.name == args.tasks[-1] else f"partial: up to {task.name}"
        note = (args.note + " " if args.note else "") + \
            f"Benchmark time {time.perf_counter() - start:.0f} s ({done})."
        write_report_section(args.section, benchmark_markdown(rows, args.images, note))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

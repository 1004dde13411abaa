"""``scoremed benchmark {quality,native,curves,denoise,speed}``: benchmark tables written as sections of a Markdown report.

- ``quality`` (``scripts/benchmark.py``): direct vs classical vs scoremed on held-out test
  images, one figure per task; ``--quick`` runs 4 images at one NFE level in a few minutes.
- ``native``: the same comparison at native resolution, on held-out test images and on real
  MR/CT scans shipped inside Python packages, with seconds and peak memory per image.
- ``curves``: PSNR / SSIM against network evaluations of every method on validation images, the CG
  step's cost against a network evaluation, and each prior's default chosen from them (``--store``).
- ``denoise``: each prior's Tweedie denoiser against BM3D, oracle-tuned TV and the noisy input at
  several noise levels, on held-out and real images: seconds per prior, the inner-loop measure of a
  prior. ``--weights`` scores a training run instead of the shipped prior; ``--json`` keeps every
  measurement, and the baselines of a previous run are reused from it.
- ``speed`` (``scripts/benchmark_speed.py``): sampler overhead, training throughput (1 vs 2
  processes), seconds per slice and PSNR against the number of score evaluations. Run it with
  one torch thread per process (the default here) for comparable numbers; ``--json PATH``
  keeps the raw measurements, and sections left out of ``--sections`` are taken from it.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import torch

from scoremed.cli.common import run_cli
from scoremed.errors import InputError

REPORT = "docs/benchmarks.md"


def run_options(p: argparse.ArgumentParser, section: str) -> argparse.ArgumentParser:
    """Options shared by the quality benchmarks: device, threads and where the report and figures go."""
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--section", default=section, help="report section name (lets parallel runs share the file)")
    p.add_argument("--note", default="", help="free text recorded above the table (machine, load)")
    p.add_argument("--report", default=REPORT, help=f"Markdown report to write the section into (default {REPORT})")
    p.add_argument("--figures", default="docs/figures", help="folder of the per-task figures (default docs/figures)")
    return p


def quality_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from scoremed.benchmarks.quality import TASKS

    p.add_argument("--quick", action="store_true", help="4 images, 200 NFE, consistency only")
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--nfe", type=int, nargs="+", default=[100, 200, 500, 1000])
    p.add_argument("--nfe-other", type=int, nargs="+", default=None,
                   help="NFE levels of the methods other than consistency (default: --nfe)")
    p.add_argument("--methods", nargs="+", default=["consistency", "projection", "dps"])
    p.add_argument("--tasks", nargs="+", default=[t.name for t in TASKS])
    return run_options(p, "quality")


def native_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from scoremed.benchmarks.native import TASKS

    p.add_argument("--images", type=int, default=3, help="held-out test images per task (default 3)")
    p.add_argument("--nfe", type=int, nargs="+", default=[50, 100])
    p.add_argument("--methods", nargs="+", default=["dds", "consistency"])
    p.add_argument("--tasks", nargs="+", default=[t.name for t in TASKS])
    p.add_argument("--no-real", action="store_true", help="skip the real MR/CT images")
    return run_options(p, "native")


def native(args: argparse.Namespace) -> int:
    from scoremed.benchmarks.native import run

    if args.threads:
        torch.set_num_threads(args.threads)
    run(args.images, {m: args.nfe for m in args.methods}, args.tasks, args.report, args.section, args.figures,
        note=args.note, device=args.device, real=not args.no_real)
    return 0


def curves_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from scoremed.benchmarks.curves import METHODS, NFE_LEVELS
    from scoremed.priors import shipped_prior_names

    p.add_argument("--priors", nargs="+", default=shipped_prior_names(), help="shipped priors (default: all)")
    p.add_argument("--images", type=int, default=2, help="validation images per prior (default 2)")
    p.add_argument("--size", type=int, default=128,
                   help="validation images at SIZE x SIZE: the central crop at native pixel size (CT: the slice "
                        "resampled) (default 128; 0: native)")
    p.add_argument("--nfe", type=int, nargs="+", default=list(NFE_LEVELS))
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--full", type=int, default=2, help="the first FULL methods run at every --nfe level (default 2)")
    p.add_argument("--max-nfe-other", type=int, default=200,
                   help="NFE cap of the other methods (default 200)")
    p.add_argument("--tolerance", type=float, default=0.5, help="dB below the best a default may be (default 0.5)")
    p.add_argument("--max-default-nfe", type=int, default=100,
                   help="a default spends at most this many evaluations (default 100: the demo's time budget)")
    p.add_argument("--store", action="store_true", help="write each prior's chosen default into its JSON")
    return run_options(p, "curves")


def curves(args: argparse.Namespace) -> int:
    from scoremed.benchmarks.curves import run

    if args.threads:
        torch.set_num_threads(args.threads)
    levels = {m: [n for n in args.nfe if i < args.full or n <= args.max_nfe_other] for i, m in enumerate(args.methods)}
    run(args.priors, args.images, args.size or None, levels, args.report, args.section, args.figures,
        tolerance=args.tolerance, max_default_nfe=args.max_default_nfe, store=args.store, note=args.note, device=args.device)
    return 0


def denoise_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from scoremed.benchmarks.denoise import METHODS, SIGMAS
    from scoremed.priors import shipped_prior_names

    p.add_argument("--priors", nargs="+", default=shipped_prior_names(), help="shipped priors (default: all)")
    p.add_argument("--weights", default=None,
                   help="score this run folder or .safetensors instead of the shipped prior (one --priors entry)")
    p.add_argument("--split", choices=["val", "test"], default="test",
                   help="held-out split: val to choose recipes, test (+ real scans) to report (default test)")
    p.add_argument("--images", type=int, default=3, help="held-out images per prior (default 3)")
    p.add_argument("--data", default=None,
                   help="denoise this built-in data set's held-out images instead of the prior's own "
                        "(e.g. natural for mri-brain: images unlike its training data)")
    p.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS))
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--offsets", type=int, default=1, help="average the prior's estimate over this many tilings")
    p.add_argument("--json", default=None, help="raw results: previous rows of methods not re-run are kept")
    p.add_argument("--no-report", action="store_true", help="print the tables, do not write the report")
    return run_options(p, "denoise")


def denoise(args: argparse.Namespace) -> int:
    from scoremed.benchmarks import denoise as bench
    from scoremed.benchmarks.report import write_report_section

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.weights and len(args.priors) != 1:
        raise InputError(f"--weights: give exactly one --priors entry, got {args.priors}")
    results = []
    for prior in args.priors:
        results += bench.run_prior(prior, args.split, args.images, args.sigmas, args.methods, device=args.device,
                                   offsets=args.offsets, weights=args.weights, data=args.data)
    if args.json:
        results = bench.merge_results(bench.load_results(args.json), results)
        bench.save_results(results, args.json)
    figure = None
    if not args.no_report:
        path = bench.plot(results, args.sigmas, Path(args.figures) / f"{args.section}.png")
        figure = Path(os.path.relpath(path, Path(args.report).parent)).as_posix()
    markdown = bench.denoise_markdown(results, args.sigmas, args.split, args.note, figure)
    print(markdown)
    if not args.no_report:
        print("wrote", write_report_section(args.report, args.section, markdown))
    return 0


def speed_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from scoremed.benchmarks.speed import SECTIONS

    p.add_argument("--quick", action="store_true", help="2 images, fewer step counts, short training runs")
    p.add_argument("--images", type=int, default=None, help="test images (default: 2 quick, 8 full)")
    p.add_argument("--train-steps", type=int, default=None, help="steps per training run (default: 16 quick, 60 full)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--no-report", action="store_true", help="print the tables, do not write the report")
    p.add_argument("--json", default=None, help="raw measurements: read (for sections not re-run) and written")
    p.add_argument("--note", default=None, help="what else ran on the machine, quoted in the report")
    p.add_argument("--report", default=REPORT, help=f"Markdown report to write the section into (default {REPORT})")
    return p


def quality(args: argparse.Namespace) -> int:
    from scoremed.benchmarks.quality import HEADER, TASKS, benchmark_markdown, run_task
    from scoremed.benchmarks.report import markdown_table, write_report_section

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.images, args.nfe, args.methods = 4, [200], ["consistency"]
    tasks = [t for t in TASKS if t.name in args.tasks]
    rows, start = [], time.perf_counter()
    for task in tasks:
        levels = {m: args.nfe if m == "consistency" or args.nfe_other is None else args.nfe_other for m in args.methods}
        task_rows = run_task(task, args.images, levels, Path(args.figures), device=args.device)
        print(markdown_table(HEADER, task_rows), flush=True)
        rows += task_rows
        done = "complete" if task is tasks[-1] else f"partial: up to {task.name}"
        note = (args.note + " " if args.note else "") + f"Benchmark time {time.perf_counter() - start:.0f} s ({done})."
        write_report_section(args.report, args.section, benchmark_markdown(rows, args.images, note))
    return 0


def speed(args: argparse.Namespace) -> int:
    from scoremed.benchmarks.report import write_report_section
    from scoremed.benchmarks.speed import SECTIONS, run, save_raw

    sections = tuple(part.strip() for part in args.sections.split(",") if part.strip())
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise InputError(f"--sections: unknown {unknown}; expected a subset of {list(SECTIONS)}")
    logging.getLogger().setLevel(logging.WARNING)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    previous = json.loads(Path(args.json).read_text()) if args.json and Path(args.json).is_file() else None
    markdown, raw = run(quick=args.quick, n_images=args.images, train_steps=args.train_steps, sections=sections,
                        previous=previous, note=args.note)
    print(markdown)
    if args.json:
        save_raw(raw, args.json)
    if not args.no_report:
        print("wrote", write_report_section(args.report, "speed", markdown))
    return 0


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="benchmark", metavar="{quality,native,curves,denoise,speed}", required=True)
    quality_parser(sub.add_parser("quality", help="reconstruction quality on held-out test images"))
    native_parser(sub.add_parser("native", help="quality at native resolution: held-out and real scans"))
    curves_parser(sub.add_parser("curves", help="quality against network evaluations on validation images"))
    denoise_parser(sub.add_parser("denoise", help="each prior as a denoiser against BM3D and TV, on held-out and "
                                                   "real images"))
    speed_parser(sub.add_parser("speed", help="sampler overhead, training throughput, PSNR against evaluations"))
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    return {"quality": quality, "native": native, "curves": curves, "denoise": denoise,
            "speed": speed}[args.benchmark](args)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

#!/usr/bin/env python
"""Speed benchmark: sampler overhead, training throughput (1 vs 2 processes), seconds per slice and
PSNR against the number of score evaluations. Writes the "speed" section of docs/benchmarks.md.

    python scripts/benchmark_speed.py [--quick] [--images N] [--train-steps N]
                                      [--sections overhead,training,quality] [--json PATH] [--note TEXT]
                                      [--no-report]

Run it with one torch thread per process (the default here, OMP_NUM_THREADS=1) for comparable
numbers; --quick takes a few minutes (2 test images, shortest step counts, short training runs).
With --json PATH the raw measurements are saved there, and sections left out of --sections are
taken from that file if it exists (e.g. re-measure only quality after new weights are shipped).
"""
import argparse
import json
import logging
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from scoremed.benchmark_speed import SECTIONS, run, save_raw  # noqa: E402
from scoremed.report import write_report_section  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 images, fewer step counts, short training runs")
    p.add_argument("--images", type=int, default=None, help="test images (default: 2 quick, 8 full)")
    p.add_argument("--train-steps", type=int, default=None, help="steps per training run (default: 16 quick, 60 full)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--no-report", action="store_true", help="print the tables, do not write docs/benchmarks.md")
    p.add_argument("--json", default=None, help="raw measurements: read (for sections not re-run) and written")
    p.add_argument("--note", default=None, help="what else ran on the machine, quoted in the report")
    args = p.parse_args()
    sections = tuple(part.strip() for part in args.sections.split(",") if part.strip())
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        p.error(f"--sections: unknown {unknown}; expected a subset of {list(SECTIONS)}")
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    previous = json.loads(Path(args.json).read_text()) if args.json and Path(args.json).is_file() else None
    markdown, raw = run(quick=args.quick, n_images=args.images, train_steps=args.train_steps, sections=sections,
                        previous=previous, note=args.note)
    print(markdown)
    if args.json:
        save_raw(raw, args.json)
    if not args.no_report:
        print("wrote", write_report_section("speed", markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

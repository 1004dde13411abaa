"""``scoremed tune`` (``scripts/tune.py``): tune snr / lam (or zeta for DPS) of shipped priors on
validation images to maximise SSIM, and store the result as the prior's default solve settings
(its JSON file)."""
from __future__ import annotations

import argparse

from scoremed.benchmarks.tuning import GRIDS, TUNING_TASK, store_defaults, tune
from scoremed.cli.common import run_cli


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("--prior", nargs="+", default=sorted(TUNING_TASK), help="shipped prior names")
    p.add_argument("--methods", nargs="+", default=sorted(GRIDS))
    p.add_argument("--steps", type=int, default=100, help="predictor steps used for tuning and stored")
    p.add_argument("--images", type=int, default=4, help="validation images")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    for name in args.prior:
        for method in args.methods:
            settings, trials = tune(name, method, args.steps, args.images)
            path = store_defaults(name, method, settings, trials)
            print(f"{name} {method}: {settings} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

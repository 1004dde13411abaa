#!/usr/bin/env python
"""Tune snr / lam (or zeta for DPS) of a shipped prior on validation images to maximise SSIM,
and store the result as the prior's default solve settings (its JSON file)."""
import argparse

from scoremed.cli.common import run_cli
from scoremed.tuning import GRIDS, TUNING_TASK, store_defaults, tune


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--prior", nargs="+", default=sorted(TUNING_TASK), help="shipped prior names")
    p.add_argument("--methods", nargs="+", default=sorted(GRIDS))
    p.add_argument("--steps", type=int, default=100, help="predictor steps used for tuning and stored")
    p.add_argument("--images", type=int, default=4, help="validation images")
    args = p.parse_args(argv)
    for name in args.prior:
        for method in args.methods:
            settings, _trials = tune(name, method, args.steps, args.images)
            path = store_defaults(name, method, settings, _trials)
            print(f"{name} {method}: {settings} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

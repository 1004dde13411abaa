"""``scoremed tune`` (``scripts/tune.py``): tune on validation images and store the results.

- default: snr / lam (or zeta for DPS) of shipped priors, maximising SSIM, stored as the prior's
  default solve settings (its JSON file);
- ``--classical mri ct inpaint``: the classical baselines' parameters, maximising PSNR, stored in the
  tuned table (``scoremed/assets/baselines/classical.json``) with untuned vs tuned validation
  and test figures; ``--size 64`` for the fixed 64 x 64 priors, ``native`` for the data's own size;
  PnP-BM3D only with the bm3d package installed (ten BM3D calls per image and grid point: at
  native size minutes per grid point);
- ``--calibrate``: the posterior-std scale of shipped priors for ``--methods`` (default: the method
  each prior recommends), fitted on
  ``--images`` validation images with ``--samples`` samples each and checked on ``--test-images``
  test images, stored in the prior's JSON under ``calibration`` (see
  :mod:`scoremed.benchmarks.calibration`).

Both write their table into the report (``--report``).
"""
from __future__ import annotations

import argparse

from scoremed.benchmarks.tuning import GRIDS, store_defaults, tune
from scoremed.cli.common import flags_in_errors, run_cli
from scoremed.errors import InputError
from scoremed.priors import shipped_prior_names, shipped_priors

REPORT = "docs/benchmarks.md"


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prior", nargs="+", default=shipped_prior_names(), help="shipped prior names")
    p.add_argument("--methods", nargs="+", default=None,
                   help=f"default: {' '.join(sorted(GRIDS))}; with --calibrate the method each prior recommends")
    p.add_argument("--steps", type=int, default=100, help="predictor steps used for tuning and stored")
    p.add_argument("--images", type=int, default=4, help="validation images")
    p.add_argument("--classical", nargs="+", choices=sorted({p.task for p in shipped_priors()}), default=None,
                   help="tune these tasks' classical baselines instead of solve settings")
    p.add_argument("--size", nargs="+", default=["native"],
                   help="--classical: image sizes to tune at ('native' or a square size such as 64); --calibrate: "
                        "one size to resample the images of a resolution-free prior to (default native)")
    p.add_argument("--baselines", nargs="+", default=None, metavar="NAME",
                   help="--classical: tune only these baselines (e.g. pnp-bm3d); the others keep their stored figures")
    p.add_argument("--calibrate", action="store_true", help="fit the posterior-std scale of --prior for --methods")
    p.add_argument("--samples", type=int, default=8, help="--calibrate: posterior samples per image")
    p.add_argument("--batch-size", type=int, default=None, help="--calibrate: images per sampler call")
    p.add_argument("--test-images", type=int, default=3, help="--classical, --calibrate: test images scored")
    p.add_argument("--report", default=REPORT, help=f"--classical, --calibrate: Markdown report to write the "
                                                    f"table into (default {REPORT}; '' for none)")
    p.add_argument("--device", default=None)
    return p


def _size(text: str) -> int | None:
    if text == "native":
        return None
    if not text.isdigit() or int(text) < 8:
        raise InputError(f"size: expected 'native' or a square image size >= 8, got {text!r}")
    return int(text)


def tune_classical_tasks(args: argparse.Namespace) -> None:
    from scoremed.benchmarks.report import write_report_section
    from scoremed.benchmarks.tuning import classical_markdown, store_classical, tune_classical

    for name in args.classical:
        for size in map(_size, args.size):
            entry = tune_classical(name, args.images, size, args.test_images, device=args.device,
                                   only=args.baselines)
            path = store_classical(name, entry)
            for baseline, b in entry["baselines"].items():
                print(f"{name} {entry['image_size']} {baseline}: untuned {b['untuned']['params']} "
                      f"{b['untuned']['psnr']:.2f} dB -> tuned {b['params']} {b['psnr']:.2f} dB (validation); "
                      f"test {b['test']['untuned']['psnr']:.2f} -> {b['test']['tuned']['psnr']:.2f} dB")
            print(f"{name}: strongest {entry['strongest']} ({entry['seconds']:.0f} s) -> {path}")
    if args.report:
        write_report_section(args.report, "classical", classical_markdown())


def calibrate_priors(args: argparse.Namespace) -> None:
    from scoremed.benchmarks.calibration import calibrate, calibration_markdown, store_calibration
    from scoremed.benchmarks.report import write_report_section
    from scoremed.priors import load_prior, shipped_metadata
    from scoremed.settings import default_method

    for name in args.prior:
        for method in args.methods or [default_method(load_prior(name))]:
            size = _size(args.size[0]) if args.size else None
            record = calibrate(name, method, args.images, args.test_images, args.samples, device=args.device,
                               batch_size=args.batch_size, size=size)
            path = store_calibration(name, method, record)
            val, test = record["validation"], record["test"]
            print(f"{name} {method}: std_scale {record['std_scale']:.3f}; coverage (nominal 0.90) validation raw "
                  f"{val['coverage_raw']:.3f} -> calibrated {val['coverage_calibrated']:.3f}, test raw "
                  f"{test['coverage_raw']:.3f} -> calibrated {test['coverage_calibrated']:.3f}; corr(std, |error|) "
                  f"test {test['correlation']:.3f} ({record['seconds']:.0f} s) -> {path}")
    if args.report:
        priors = {name: shipped_metadata(name) for name in shipped_prior_names()}
        write_report_section(args.report, "calibration", calibration_markdown(priors))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    with flags_in_errors(p):
        if args.classical and args.calibrate:
            raise InputError("calibrate: give --classical or --calibrate, not both")
        if args.classical:
            tune_classical_tasks(args)
            return 0
        if args.calibrate:
            calibrate_priors(args)
            return 0
        for name in args.prior:
            for method in args.methods or sorted(GRIDS):
                settings, trials = tune(name, method, args.steps, args.images)
                path = store_defaults(name, method, settings, trials)
                print(f"{name} {method}: {settings} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

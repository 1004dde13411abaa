"""``scoremed sample`` (``scripts/sample.py``): unconditional samples from a prior, written as a PNG grid
and a .npy array."""
from __future__ import annotations

import argparse
import logging

from scoremed.apps.samples import write_samples
from scoremed.cli.common import flags_in_errors, run_cli
from scoremed.errors import InputError, resolve_device
from scoremed.priors import load_prior
from scoremed.sampling import sample

log = logging.getLogger("scoremed")


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("--prior", default="mri-brain", help="shipped name, .safetensors file or run folder")
    p.add_argument("-n", "--n", type=int, default=16, help="number of samples")
    p.add_argument("--method", default="pc", help="pc or ode")
    p.add_argument("--steps", type=int, default=None, help="PC steps (default: the SDE's N)")
    p.add_argument("--snr", type=float, default=0.16)
    p.add_argument("--shape", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="image size; required for a resolution-free prior, which samples at any size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="outputs/samples", help="output folder")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    if args.n < 1:
        raise InputError(f"--n: expected a positive number of samples, got {args.n}")
    with flags_in_errors(p):
        prior = load_prior(args.prior, device=resolve_device(args.device))
        record = {}
        samples = sample(prior, n=args.n, method=args.method, steps=args.steps, snr=args.snr, seed=args.seed,
                         progress=True, callback=lambda info: record.update(nfe=info["nfe"]), shape=args.shape)
    out = write_samples(samples, args.out)
    log.info("%d samples of '%s' (%s, %d score evaluations per batch) written to %s",
             args.n, prior.name, args.method, record.get("nfe", 0), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

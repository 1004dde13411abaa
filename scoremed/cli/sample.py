"""``sample.py``: unconditional samples from a prior, written as a PNG grid and a .npy array."""
from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import torch

from scoremed.training.checkpoint import load_prior
from scoremed.cli.common import resolve_device, run_cli
from scoremed.errors import InputError
from scoremed.io.images import save_png
from scoremed.io_atomic import atomic_write
from scoremed.sampling import sample

log = logging.getLogger("scoremed")


def image_grid(images: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """(N, C, H, W) -> one (C, rows*(H+pad), cols*(W+pad)) tiling, nearly square."""
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.ones(c, rows * (h + pad) - pad, cols * (w + pad) - pad)
    for i, image in enumerate(images):
        r, q = divmod(i, cols)
        grid[:, r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = image
    return grid


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sample.py", description=__doc__)
    p.add_argument("--prior", default="mri-brain", help="shipped name, .safetensors file or run folder")
    p.add_argument("-n", "--n", type=int, default=16, help="number of samples")
    p.add_argument("--method", default="pc", help="pc or ode")
    p.add_argument("--steps", type=int, default=None, help="PC steps (default: the SDE's N)")
    p.add_argument("--snr", type=float, default=0.16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default="outputs/samples", help="output folder")
    args = p.parse_args(argv)
    if args.n < 1:
        raise InputError(f"--n: expected a positive number of samples, got {args.n}")
    prior = load_prior(args.prior, device=resolve_device(args.device))
    record = {}
    samples = sample(prior, n=args.n, method=args.method, steps=args.steps, snr=args.snr, seed=args.seed,
                     progress=True, callback=lambda info: record.update(nfe=info["nfe"]))
    samples = samples.clamp(0, 1).cpu()
    out = Path(args.out)
    save_png(out / "samples.png", image_grid(samples))
    atomic_write(out / "samples.npy", lambda path: np.save(path, samples.numpy()), suffix=".npy")
    log.info("%d samples of '%s' (%s, %d score evaluations per batch) written to %s",
             args.n, prior.name, args.method, record.get("nfe", 0), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

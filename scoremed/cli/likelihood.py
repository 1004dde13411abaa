"""``scoremed likelihood`` (``scripts/likelihood.py``): bits per dimension of image files under a prior
(probability-flow ODE). A fixed-size prior sees every image resampled to its grid; a resolution-free
prior sees each image at its own size (or ``--size H W``)."""
from __future__ import annotations

import argparse

import torch

from scoremed.cli.common import flags_in_errors, run_cli
from scoremed.errors import resolve_device
from scoremed.io.images import load_image
from scoremed.likelihood import likelihood
from scoremed.priors import load_prior


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("images", nargs="+", help="image files (PNG/JPG/TIFF, .npy, NIfTI slice, DICOM)")
    p.add_argument("--prior", default="mri-brain")
    p.add_argument("--exact-trace", action="store_true", help="exact divergence (slow; small images)")
    p.add_argument("--dequantize-bits", type=int, default=None,
                   help="treat images as b-bit data with uniform dequantization (ScoreSDE convention)")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="resample every image to H x W (default: the prior's grid, or each image's own size for a "
                        "resolution-free prior)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    with flags_in_errors(p):
        prior = load_prior(args.prior, device=resolve_device(args.device))
        size = tuple(args.size) if args.size else None if prior.resolution_free else tuple(prior.image_shape[-2:])
        images = [load_image(path, prior.channels, size, argument="images")[None] for path in args.images]
        # images of one size are scored together; of different sizes, one at a time (same seed)
        batches = [torch.cat(images)] if len({im.shape for im in images}) == 1 else images
        bpd = torch.cat([likelihood(x, prior, exact_trace=args.exact_trace, dequantize_bits=args.dequantize_bits,
                                    seed=args.seed) for x in batches])
    for path, value in zip(args.images, bpd.tolist()):
        print(f"{value:.4f} bits/dim  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

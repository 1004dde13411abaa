"""``scoremed convert`` (``scripts/convert_checkpoint.py``): a published score_sde_pytorch checkpoint
(NCSN++ / DDPM++) in scoremed's safe format.

    scoremed convert checkpoint_26.pth ve_cifar10_ncsnpp_continuous --out priors/cifar10-ve
    # then: scoremed.load_prior("priors/cifar10-ve.safetensors")

The checkpoint is read with torch.load(weights_only=True); the EMA weights are kept.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scoremed.cli.common import run_cli
from scoremed.networks.published import published_configs
from scoremed.priors import convert_checkpoint


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="reference checkpoint (.pth) with 'model' and 'ema'")
    p.add_argument("config", help=f"JSON / YAML reference config, or a shipped name: {', '.join(published_configs())}")
    p.add_argument("--out", default=None,
                   help="output path without suffix (default: the checkpoint path without .pth)")
    p.add_argument("--raw", action="store_true", help="keep the raw training weights instead of the EMA weights")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix("")
    weights = convert_checkpoint(args.checkpoint, args.config, out, ema=not args.raw)
    print(f"wrote {weights} and {weights.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

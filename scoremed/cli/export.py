"""``scoremed export`` (``scripts/export_prior.py``): turn a training run's latest EMA weights into a shipped
prior file pair."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from scoremed.training.checkpoint import SHIPPED_DIR, load_prior, save_prior
from scoremed.cli.common import run_cli

log = logging.getLogger("scoremed")


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("run", help="training run folder (its latest checkpoint is exported)")
    p.add_argument("--name", required=True, help="prior name, e.g. mri-brain")
    p.add_argument("--out-dir", default=str(SHIPPED_DIR), help="where NAME.safetensors/.json go")
    p.add_argument("--wall-time", default=None, help="training wall time to record, e.g. '2 h on 2 CPU cores'")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    prior = load_prior(args.run)
    meta = prior.metadata
    prior.name = args.name
    extra = {"training": {"step": meta["step"], "config": meta.get("config"), "wall_time": args.wall_time,
                          "command": f"python scripts/train_prior.py --config {args.name} --steps {meta['step']}"}}
    path = save_prior(Path(args.out_dir) / args.name, prior, meta["architecture"], extra_metadata=extra)
    log.info("exported step %d of %s to %s", meta["step"], args.run, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

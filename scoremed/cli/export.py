"""``scoremed export`` (``scripts/export_prior.py``): turn a training run's latest EMA weights into a shipped
prior file pair."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from scoremed.cli.common import run_cli
from scoremed.io.checkpoint import read_json
from scoremed.priors import SHIPPED_DIR, load_prior, save_prior

log = logging.getLogger("scoremed")
#: what a re-export keeps from the prior it replaces: the choices measured on validation images
#: (a calibration records the weights it was fitted to, so a stale one is ignored, not misapplied)
KEPT = ("default_method", "solve_defaults", "tuning", "curves", "calibration")
#: kept even by ``--fresh``: the prior's benchmark facts (:class:`scoremed.priors.ShippedPrior`), not measurements
FACTS = ("tuning_task", "real_images")


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("run", help="training run folder (its latest checkpoint is exported)")
    p.add_argument("--name", required=True, help="prior name, e.g. mri-brain")
    p.add_argument("--out-dir", default=str(SHIPPED_DIR), help="where NAME.safetensors/.json go")
    p.add_argument("--wall-time", default=None, help="training wall time to record, e.g. '2 h on 2 CPU cores'")
    p.add_argument("--fresh", action="store_true",
                   help=f"do not keep {', '.join(KEPT)} of an existing NAME.json in --out-dir")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    prior = load_prior(args.run)
    meta = prior.metadata
    prior.name = args.name
    init = meta.get("initialised_from")
    command = f"python scripts/train_prior.py --config {args.name} --steps {meta['step']}"
    training = {"step": meta["step"], "config": meta.get("config"), "wall_time": args.wall_time,
                "command": command + (f" --init {init['prior']}" if init else "")}
    if init:
        training["initialised_from"] = init
    extra = {"training": training}
    existing = Path(args.out_dir) / f"{args.name}.json"
    if existing.is_file():
        previous = read_json(existing)
        kept = {key: previous[key] for key in FACTS + (() if args.fresh else KEPT) if key in previous}
        log.info("kept %s of %s", ", ".join(kept) or "nothing", existing)
        prior.solve_defaults = kept.pop("solve_defaults", prior.solve_defaults)
        extra.update(kept)
    path = save_prior(Path(args.out_dir) / args.name, prior, meta["architecture"], extra_metadata=extra)
    log.info("exported step %d of %s to %s", meta["step"], args.run, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

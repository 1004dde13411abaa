"""``train_prior.py``: train a score prior from a YAML config on built-in data or user files."""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from scoremed.cli.common import find_config, resolve_device, run_cli
from scoremed.config import load_config
from scoremed.training import Trainer, TrainingDiverged
from scoremed.training_data import training_dataset

log = logging.getLogger("scoremed")
DEFAULT_CONFIG = "mri-brain"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train_prior.py", description=__doc__)
    p.add_argument("--config", default=DEFAULT_CONFIG,
                   help=f"YAML file or name in configs/ (default: {DEFAULT_CONFIG})")
    p.add_argument("--data", nargs="+", default=None,
                   help="training files or folders (NIfTI, DICOM, HDF5, PNG/JPG/TIFF, .npy); "
                        "default: the config's built-in data set")
    p.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    p.add_argument("--steps", type=int, default=None, help="total training steps (default: config)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: config)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = load_config(find_config(args.config))
    if args.data:
        config.data = dataclasses.replace(config.data, paths=list(args.data))
    if args.seed is not None:
        config.training = dataclasses.replace(config.training, seed=args.seed)
    out = Path(args.out or Path("runs") / config.name)
    source = f"files {config.data.paths}" if config.data.paths else f"the built-in data set '{config.data.dataset}'"
    log.info("training '%s' on %s into %s", config.name, source, out)
    trainer = Trainer(config, training_dataset(config), out, device=resolve_device(args.device),
                      resume=args.resume, progress=not args.no_progress)
    try:
        summary = trainer.train(args.steps)
    except TrainingDiverged as exc:
        log.error("error: %s", exc)
        return 3
    log.info("done: step %d, loss %.4f, checkpoints in %s", summary["step"], summary["loss"], out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

"""``scoremed train`` (``scripts/train_prior.py``): train a score prior from a YAML config on built-in
data or user files.

Several processes: ``torchrun --nproc_per_node=P -m scoremed train ...`` (add
``--nnodes``/``--rdzv-endpoint`` for several machines). The config's ``batch_size`` is the
global batch, shared out over the processes; only rank 0 writes the log and checkpoints, and
``--resume`` works with any process count that divides the batch.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
from pathlib import Path

from scoremed.cli.common import run_cli
from scoremed.cli.speed import add_speed_arguments, speed_options
from scoremed.configs import find_config
from scoremed.errors import resolve_device
from scoremed.training.config import load_config
from scoremed.distributed import BACKENDS, init_distributed, shutdown
from scoremed.training import Trainer, TrainingDiverged
from scoremed.data import training_dataset

log = logging.getLogger("scoremed")
DEFAULT_CONFIG = "mri-brain"


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=DEFAULT_CONFIG,
                   help=f"YAML file or the name of a shipped config (default: {DEFAULT_CONFIG})")
    p.add_argument("--data", nargs="+", default=None,
                   help="training files or folders (NIfTI, DICOM, HDF5, PNG/JPG/TIFF, .npy); "
                        "default: the config's built-in data set")
    p.add_argument("--slice-axis", type=int, choices=(0, 1, 2), default=None,
                   help="with --data: RAS axis volumes are sliced along (0 sagittal, 1 coronal, 2 axial; default: config)")
    p.add_argument("--intensity", choices=("percentile", "ct"), default=None,
                   help="with --data: percentile (0.5-99.5 %% to [0, 1]) or ct (--ct-window HU to [0, 1]; default: config)")
    p.add_argument("--ct-window", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="with --data --intensity ct: HU window (default: config, -1000 1000)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    p.add_argument("--steps", type=int, default=None, help="total training steps (default: config)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--init", default=None, metavar="PRIOR",
                   help="start from a trained prior's weights (shipped name, .safetensors or run folder) of the "
                        "same architecture: fine-tune it on --data, or train a shipped prior further")
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:N (default: cuda if available; under torchrun cuda:LOCAL_RANK)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: config)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="torch.distributed backend under torchrun: auto = nccl on CUDA, gloo on the CPU")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_speed_arguments(p)
    return p


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM (batch schedulers, ``kill``) like Ctrl-C: the trainer saves a checkpoint and stops."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    _interrupt_on_sigterm()
    config = load_config(find_config(args.config, argument="--config"))
    if args.data:
        config.data = dataclasses.replace(config.data, paths=list(args.data))
    data_options = {"slice_axis": args.slice_axis, "intensity": args.intensity,
                    "ct_window": list(args.ct_window) if args.ct_window else None}
    config.data = dataclasses.replace(config.data, **{k: v for k, v in data_options.items() if v is not None})
    if args.seed is not None:
        config.training = dataclasses.replace(config.training, seed=args.seed)
    config.training = dataclasses.replace(config.training, **speed_options(args))
    out = Path(args.out or Path("runs") / config.name)
    dist = init_distributed(resolve_device(args.device, "--device") if args.device else None, backend=args.backend)
    try:
        if not dist.is_main:
            logging.getLogger().setLevel(logging.WARNING)
        source = f"files {config.data.paths}" if config.data.paths else f"the built-in data set '{config.data.dataset}'"
        log.info("training '%s' on %s into %s%s", config.name, source, out,
                 f" with {dist.world_size} processes ({dist.backend})" if dist.is_distributed else "")
        trainer = Trainer(config, training_dataset(config), out, device=dist.device, resume=args.resume,
                          progress=not args.no_progress, dist=dist, init=args.init)
        try:
            summary = trainer.train(args.steps)
        except TrainingDiverged as exc:
            log.error("error: %s", exc)
            return 3
        log.info("done: step %d, loss %.4f, checkpoints in %s", summary["step"], summary["loss"], out)
        return 0
    finally:
        shutdown(dist)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

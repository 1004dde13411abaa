"""The ``scoremed`` command: ``scoremed <command> [options]`` = ``python -m scoremed <command>``.

Each command is one module of this package with a ``main(argv) -> exit code``; the scripts in
``scripts/`` are shims over the same functions.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: command -> (module, one-line description)
COMMANDS = {
    "train": ("scoremed.cli.train", "train a score prior from a YAML config on built-in data or your files"),
    "reconstruct": ("scoremed.cli.reconstruct", "reconstruct MRI, CT, inpainting or colorization measurements"),
    "sample": ("scoremed.cli.sample", "unconditional samples of a prior as a PNG grid and .npy"),
    "likelihood": ("scoremed.cli.likelihood", "bits per dimension of image files under a prior"),
    "export": ("scoremed.cli.export", "a training run's EMA weights as a shipped prior file pair"),
    "convert": ("scoremed.cli.convert", "a published score_sde_pytorch checkpoint in scoremed's safe format"),
    "tune": ("scoremed.cli.tune", "tune solve settings of shipped priors on validation images"),
    "benchmark": ("scoremed.cli.benchmark", "quality and speed benchmarks written to a Markdown report"),
}


def command_main(name: str):
    """The ``main(argv)`` of command ``name`` (imported on demand, so ``--help`` stays fast)."""
    return importlib.import_module(COMMANDS[name][0]).main


def parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<12} {description}" for name, (_module, description) in COMMANDS.items())
    p = argparse.ArgumentParser(
        prog="scoremed", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"Score-based generative priors for inverse problems in medical imaging.\n\ncommands:\n{listing}",
        epilog="'scoremed <command> --help' shows the options of a command; "
               "'python -m scoremed <command>' is the same.")
    sub = p.add_subparsers(dest="command", metavar="<command>", help="one of the commands above")
    for name in COMMANDS:
        sub.add_parser(name, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: dispatch to the command's ``main``."""
    from scoremed.cli.common import run_cli

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        p = parser()
        if not argv or argv[0] in ("-h", "--help"):
            p.print_help()
            return 0 if argv else 2
        p.parse_args(argv[:1])   # unknown command: argparse prints the choices, exits 2
    name, rest = argv[0], argv[1:]
    return run_cli(command_main(name), rest, prog=f"scoremed {name}")

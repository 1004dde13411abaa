#!/usr/bin/env python
"""Train a score prior. With no arguments: the default config on the built-in data set."""
from scoremed.cli.common import run_cli
from scoremed.cli.train import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))

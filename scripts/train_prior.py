#!/usr/bin/env python
"""``python scripts/train_prior.py ...`` = ``scoremed train ...``."""
from scoremed.cli.common import run_cli
from scoremed.cli.train import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))

#!/usr/bin/env python
"""``python scripts/reconstruct.py ...`` = ``scoremed reconstruct ...``."""
from scoremed.cli.common import run_cli
from scoremed.cli.reconstruct import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))

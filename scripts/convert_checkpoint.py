#!/usr/bin/env python
"""``python scripts/convert_checkpoint.py ...`` = ``scoremed convert ...``."""
from scoremed.cli.common import run_cli
from scoremed.cli.convert import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))

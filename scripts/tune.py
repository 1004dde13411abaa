#!/usr/bin/env python
"""``python scripts/tune.py ...`` = ``scoremed tune ...``."""
from scoremed.cli.common import run_cli
from scoremed.cli.tune import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))

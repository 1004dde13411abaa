#!/usr/bin/env python
"""``python scripts/sample.py ...`` = ``scoremed sample ...``."""
from scoremed.cli.common import run_cli
from scoremed.cli.sample import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))

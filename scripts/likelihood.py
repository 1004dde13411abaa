#!/usr/bin/env python
"""``python scripts/likelihood.py ...`` = ``scoremed likelihood ...``."""
from scoremed.cli.common import run_cli
from scoremed.cli.likelihood import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))

#!/usr/bin/env python
"""``python scripts/export_prior.py ...`` = ``scoremed export ...``."""
from scoremed.cli.common import run_cli
from scoremed.cli.export import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))

#!/usr/bin/env python
"""Reconstruct MRI / CT / inpainting / colorization measurements with a score prior."""
from scoremed.cli.common import run_cli
from scoremed.cli.reconstruct import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))

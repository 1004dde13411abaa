#!/usr/bin/env python
"""Export a training run's latest EMA weights as a shipped prior (safetensors + JSON)."""
from scoremed.cli.common import run_cli
from scoremed.cli.export import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))

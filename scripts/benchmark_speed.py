#!/usr/bin/env python
"""``python scripts/benchmark_speed.py ...`` = ``scoremed benchmark speed ...``."""
import sys

from scoremed.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["benchmark", "speed", *sys.argv[1:]]))

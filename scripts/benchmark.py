#!/usr/bin/env python
"""``python scripts/benchmark.py ...`` = ``scoremed benchmark quality ...``."""
import sys

from scoremed.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["benchmark", "quality", *sys.argv[1:]]))

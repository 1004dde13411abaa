"""``python -m scoremed <command>``: the same as the ``scoremed`` console script."""
from scoremed.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""python -m explorer: the command line (`explorer.cli`)."""

from explorer.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

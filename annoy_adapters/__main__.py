"""``python -m annoy_adapters``: the same command line as ``annoy-adapters``."""

import sys

from annoy_adapters.cli import main

if __name__ == "__main__":
    sys.exit(main())

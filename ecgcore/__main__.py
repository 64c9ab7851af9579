"""``python -m ecgcore``: the same as the ``ecglab`` console script."""

import sys

from ecgcore.cli import main

if __name__ == "__main__":
    sys.exit(main())

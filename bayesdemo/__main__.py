"""`python -m bayesdemo`: see bayesdemo.cli."""

import sys

from bayesdemo.cli import main

if __name__ == "__main__":
    sys.exit(main())

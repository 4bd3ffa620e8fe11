"""PyInstaller entry point: the same ``main`` as the ``chaoyang-desktop`` command."""

import sys

from chaoyang_desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())

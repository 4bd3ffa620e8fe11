"""``python -m chaoyang_desktop``: same as the ``chaoyang-desktop`` command."""

from __future__ import annotations

import sys

from chaoyang_desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())

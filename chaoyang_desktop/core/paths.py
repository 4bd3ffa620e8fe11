"""Per-user folders (results cache, logs), overridable with ``CHAOYANG_DATA_DIR`` for tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_DIR_NAME = "chaoyang-desktop"


def user_data_dir() -> Path:
    """Where the app keeps its cache and log: platform conventions, read at call time."""
    override = os.environ.get("CHAOYANG_DATA_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / APP_DIR_NAME


def results_cache_dir() -> Path:
    return user_data_dir() / "results-cache"


def log_dir() -> Path:
    return user_data_dir() / "logs"

"""Whether Ray is installed, and what to do when it is not (without importing it)."""

from __future__ import annotations

import importlib.util

from chaoyang_desktop.core.errors import ChaoyangError

INSTALL_HINT = 'install the cluster extra: python3 -m pip install "chaoyang-desktop[cluster]" (or: pip install ray)'


class RayMissingError(ChaoyangError, ImportError):
    """Ray is not installed, so a cohort cannot go to a cluster."""


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def require_ray() -> None:
    """Raise :class:`RayMissingError` with the install command when Ray is absent."""
    if not ray_available():
        raise RayMissingError(f"Ray is not installed here: {INSTALL_HINT}.")

"""The one way to reach files in ``resources/`` (icons, the sample slide, desktop files).

They live beside the package in a source checkout, under ``share/chaoyang-desktop`` of the
environment after ``pip install``, and beside the executable in a PyInstaller bundle.
"""

from __future__ import annotations

import sys
from pathlib import Path

SAMPLE_SLIDE = ("samples", "CMU-1-Small-Region.svs")


def resources_dir() -> Path:
    """The first existing candidate folder; raises if the installation lost its resources."""
    candidates = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "resources")
    candidates.append(Path(__file__).resolve().parent.parent / "resources")
    candidates.append(Path(sys.prefix) / "share" / "chaoyang-desktop" / "resources")
    for c in candidates:
        if (c / "icons").is_dir():
            return c
    raise FileNotFoundError(
        "Chaoyang Desktop's resources folder is missing (looked in: " + ", ".join(map(str, candidates)) + "). Reinstall the app."
    )


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


def icon_path(size: int = 256) -> Path:
    return resource_path("icons", f"chaoyang-desktop-{size}.png")


def sample_slide_path() -> Path:
    return resource_path(*SAMPLE_SLIDE)

"""A perceptual colour map (viridis) as a 256-entry lookup table, for the probability overlay.

Viridis is perceptually uniform and readable by people with the common colour-vision deficiencies;
it is built here from nine reference colours by linear interpolation, which stays within a
just-noticeable difference of matplotlib's table.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QLinearGradient

_VIRIDIS_STOPS = (
    "#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725",
)


def _hex(c: str) -> tuple[int, int, int]:
    v = int(c.lstrip("#"), 16)
    return (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF


def _build(stops: tuple[str, ...]) -> np.ndarray:
    rgb = np.array([_hex(c) for c in stops], dtype=np.float64)
    t = np.linspace(0.0, 1.0, len(stops))
    x = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(x, t, rgb[:, k]) for k in range(3)], axis=1)
    return np.clip(np.rint(lut), 0, 255).astype(np.uint8)


#: (256, 3) uint8: ``VIRIDIS[round(p * 255)]`` is the colour of value ``p`` in 0..1.
VIRIDIS: np.ndarray = _build(_VIRIDIS_STOPS)


def apply_lut(values: np.ndarray, lut: np.ndarray = VIRIDIS) -> np.ndarray:
    """Colours ``(..., 3)`` of values in 0..1 (NaN maps to 0)."""
    idx = np.clip(np.rint(np.nan_to_num(values) * 255.0), 0, 255).astype(np.intp)
    return lut[idx]


def viridis_gradient(x0: float, x1: float) -> QLinearGradient:
    """A horizontal gradient from ``x0`` (value 0) to ``x1`` (value 1), for colour bars."""
    grad = QLinearGradient(x0, 0, x1, 0)
    for i in (*range(0, 256, 16), 255):
        r, g, b = (int(v) for v in VIRIDIS[i])
        grad.setColorAt(i / 255.0, QColor(r, g, b))
    return grad

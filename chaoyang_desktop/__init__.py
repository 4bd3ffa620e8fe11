"""Chaoyang Desktop: a desktop viewer that classifies colon H&E tissue with a Vision Transformer.

The package is layered: ``core`` (Qt-free engine: slides, tiling, model, inference, results),
``export`` (Qt-free writers), ``gui`` (PySide6 only), with ``cli`` and ``app`` as the two front ends.
"""

from __future__ import annotations

__version__ = "0.1.0"

"""Per-tile predictions as CSV in the WSInfer layout.

One row per tile that has a prediction::

    minx,miny,width,height,prob_Normal,prob_Serrated,...,label,confidence

Geometry is in level-0 pixels (clipped to the slide, as :meth:`AnalysisResult.rects` gives it),
so the file lines up with QuPath and with ``tiles.geojson``. The probability columns keep the
model's class order and spelling, so a WSInfer-reading script finds them by name.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import IO

import numpy as np

from chaoyang_desktop.core.atomic import write_with
from chaoyang_desktop.core.analysis.results import TILE_DONE, AnalysisResult

#: Geometry columns, in WSInfer's order and spelling.
GEOMETRY_COLUMNS: tuple[str, ...] = ("minx", "miny", "width", "height")


def prob_column(class_name: str) -> str:
    """The column (and GeoJSON measurement) name holding one class's probability."""
    return f"prob_{class_name}"


def tiles_csv_header(class_names: Sequence[str]) -> list[str]:
    """The CSV header for a model with these classes."""
    return [*GEOMETRY_COLUMNS, *(prob_column(n) for n in class_names), "label", "confidence"]


def write_tiles_csv(result: AnalysisResult, path: str | os.PathLike[str]) -> None:
    """Write one row per done tile to ``path`` atomically.

    Failed and pending tiles have no probabilities and are not rows; ``summary.json`` lists
    the failed ones with their error. Probabilities and confidence have 6 decimals; ``label``
    is the top class name and ``confidence`` its probability.

    Args:
        result: The analysis to export.
        path: Destination file; its folder must exist.

    Raises:
        OutputError: The file cannot be written; an existing file is left as it was.
    """
    names = result.class_names
    done = np.flatnonzero(result.status == TILE_DONE)
    rects = result.rects()[done]
    probs = result.probs[done].astype(np.float64)
    labels = result.labels()[done]
    conf = result.confidences()[done].astype(np.float64)

    def fill(fh: IO[str]) -> None:
        # "\n" rather than csv's default "\r\n": pandas (which WSInfer uses) writes "\n" too.
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(tiles_csv_header(names))
        for j in range(len(done)):
            x, y, w, h = (int(v) for v in rects[j])
            writer.writerow(
                [x, y, w, h, *(f"{p:.6f}" for p in probs[j]), names[int(labels[j])], f"{conf[j]:.6f}"]
            )

    write_with(path, fill)

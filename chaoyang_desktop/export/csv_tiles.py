"""Per-tile predictions as CSV in the WSInfer layout.

One row per tile that has a prediction or was left out by quality control::

    minx,miny,width,height,prob_Normal,prob_Serrated,...,label,confidence,entropy,margin,tta_spread,qc

``entropy`` is normalised to 0-1 and ``margin`` is the top-1 minus top-2 probability
(:mod:`chaoyang_desktop.core.analysis.results`); ``tta_spread`` is the standard deviation of the
top class's probability across the test-time views (empty without ``--tta``). ``qc`` names the
quality-control reasons a tile was left out for, ``;``-separated (``glass``, ``pen``, ``blur``,
``dark``); such a row has no probabilities, label or confidence. WSInfer's columns come first.

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
from chaoyang_desktop.core.analysis.results import TILE_DONE, TILE_QC, AnalysisResult
from chaoyang_desktop.core.slide.tile_qc import reason_names

#: Geometry columns, in WSInfer's order and spelling.
GEOMETRY_COLUMNS: tuple[str, ...] = ("minx", "miny", "width", "height")


def prob_column(class_name: str) -> str:
    """The column (and GeoJSON measurement) name holding one class's probability."""
    return f"prob_{class_name}"


def tiles_csv_header(class_names: Sequence[str]) -> list[str]:
    """The CSV header for a model with these classes."""
    return [*GEOMETRY_COLUMNS, *(prob_column(n) for n in class_names), "label", "confidence", *EXTRA_COLUMNS]


#: Columns after WSInfer's: uncertainty, TTA spread, and quality control.
EXTRA_COLUMNS: tuple[str, ...] = ("entropy", "margin", "tta_spread", "qc")


def _num(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.6f}"


def write_tiles_csv(result: AnalysisResult, path: str | os.PathLike[str]) -> None:
    """Write one row per done or QC-flagged tile to ``path`` atomically, in tile order.

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
    rows = np.flatnonzero((result.status == TILE_DONE) | (result.status == TILE_QC))
    rects = result.rects()[rows]
    probs = result.probs[rows].astype(np.float64)
    labels = result.labels()[rows]
    conf = result.confidences()[rows].astype(np.float64)
    entropy = result.entropy()[rows]
    margin = result.margin()[rows]
    top_spread = result.top_spread()
    spread = top_spread[rows] if top_spread is not None else np.full(len(rows), np.nan)
    qc = result.qc[rows]

    def fill(fh: IO[str]) -> None:
        # "\n" rather than csv's default "\r\n": pandas (which WSInfer uses) writes "\n" too.
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(tiles_csv_header(names))
        for j in range(len(rows)):
            x, y, w, h = (int(v) for v in rects[j])
            label = names[int(labels[j])] if labels[j] >= 0 else ""
            writer.writerow([x, y, w, h, *(_num(p) for p in probs[j]), label, _num(conf[j]), _num(entropy[j]),
                             _num(margin[j]), _num(spread[j]), ";".join(reason_names(int(qc[j])))])

    write_with(path, fill)

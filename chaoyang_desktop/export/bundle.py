"""Write every export of one analysis into one folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy.typing as npt

from chaoyang_desktop.core.slide.annotations import Annotation
from chaoyang_desktop.core.errors import OutputError
from chaoyang_desktop.core.analysis.results import AnalysisResult
from chaoyang_desktop.export.csv_tiles import write_tiles_csv
from chaoyang_desktop.export.geojson_tiles import write_tiles_geojson
from chaoyang_desktop.export.heatmap_image import write_heatmap_png
from chaoyang_desktop.core.analysis.result_files import PREDICTIONS_NPZ, SUMMARY_JSON, write_predictions_npz, write_summary_json

TILES_CSV = "tiles.csv"
TILES_GEOJSON = "tiles.geojson"
HEATMAP_PNG = "heatmap.png"
#: Written by :mod:`chaoyang_desktop.export.pdf_report` when a report is asked for.
REPORT_PDF = "report.pdf"


def write_all(
    result: AnalysisResult,
    out_dir: str | os.PathLike[str],
    thumb_rgb: npt.ArrayLike | None,
    *,
    slide_facts: dict[str, Any] | None = None,
    heatmap_options: dict[str, Any] | None = None,
    annotations: Sequence[Annotation] | None = None,
) -> dict[str, Path]:
    """Write ``tiles.csv``, ``tiles.geojson``, ``heatmap.png``, ``predictions.npz`` and ``summary.json``.

    Each file is written atomically, so an error leaves every file either complete (old or new)
    or absent; files written before the error stay. The two files :func:`load_result_dir` needs
    come first, so the most valuable output survives a later failure.

    Args:
        result: The analysis.
        out_dir: Destination folder; created (with its parents) when missing.
        thumb_rgb: Thumbnail of the whole slide for ``heatmap.png``; None skips that file.
        slide_facts: Extra slide facts for ``summary.json``.
        heatmap_options: Keyword options of :func:`render_heatmap`.
        annotations: Annotations whose composition ``summary.json`` states (its ``annotations``).

    Returns:
        The path of each written file, keyed by file name.

    Raises:
        OutputError: The folder cannot be created or a file cannot be written.
    """
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"Cannot create the output folder {folder}: {exc.strerror or exc}. Choose a folder you can write to."
        ) from exc
    written: dict[str, Path] = {}
    steps: list[tuple[str, Callable[[Path], None]]] = [
        (PREDICTIONS_NPZ, lambda p: write_predictions_npz(result, p)),
        (SUMMARY_JSON, lambda p: write_summary_json(result, p, slide_facts, annotations)),
        (TILES_CSV, lambda p: write_tiles_csv(result, p)),
        (TILES_GEOJSON, lambda p: write_tiles_geojson(result, p)),
    ]
    if thumb_rgb is not None:
        steps.append((HEATMAP_PNG, lambda p: write_heatmap_png(thumb_rgb, result, p, **(heatmap_options or {}))))
    for name, write in steps:
        write(folder / name)
        written[name] = folder / name
    return written

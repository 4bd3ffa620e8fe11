"""Class composition of an analysis inside each annotation.

The numbers mean what :meth:`AnalysisResult.summary`'s ``classes`` mean, restricted to one
annotation, and are rounded the same way, so an annotation covering the whole slide gives the
slide's composition to the digit:

- Areas (``analysed_area_mm2``, per class ``area_mm2`` and ``percent``) weigh each analysed
  heatmap cell by the share of it the annotation covers: its :class:`Roi` rasterised at
  ``SUBSAMPLES`` x ``SUBSAMPLES`` points per cell (of those inside the slide). So an
  annotation smaller than a cell still gets the class of the cells it lies on, and one that
  covers the slide gets the slide's areas (cell areas are clipped to the slide,
  :meth:`GridSpec.cell_areas_l0`).
- Tile counts and mean confidences come from the done tiles whose rectangle's centre lies
  inside; tiles partly inside count wholly or not at all, as the cells do.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chaoyang_desktop.core.slide.annotations import Annotation
from chaoyang_desktop.core.analysis.results import TILE_DONE, AnalysisResult
from chaoyang_desktop.core.slide.tiling import GridSpec

#: Sample points per side of a heatmap cell when measuring how much of it an annotation covers.
SUBSAMPLES = 4


# Annotations are immutable (an edit makes a new one) and grids frozen, so the coverage of a pair
# never changes: the summary refreshes several times a second during a run, and would otherwise
# rasterise every annotation at 16 samples per cell each time.
@functools.lru_cache(maxsize=256)
def cell_coverage(annotation: Annotation, grid: GridSpec) -> np.ndarray:
    """Share (0..1) of each heatmap cell's part inside the slide that the annotation covers (read-only)."""
    n = SUBSAMPLES
    rows, cols = grid.hm_rows, grid.hm_cols
    step = grid.l0_stride / n
    inside = annotation.roi().rasterize(cols * n, rows * n, step, step)
    # Sample points past the slide's edge do not count: edge cells are clipped to the slide.
    l0_x = (np.arange(cols * n) + 0.5) * step
    l0_y = (np.arange(rows * n) + 0.5) * step
    on_slide = (l0_y[:, None] < grid.l0_height) & (l0_x[None, :] < grid.l0_width)
    hits = (inside & on_slide).reshape(rows, n, cols, n).sum(axis=(1, 3))
    total = on_slide.reshape(rows, n, cols, n).sum(axis=(1, 3))
    coverage = np.where(total > 0, hits / np.maximum(total, 1), 0.0)
    coverage.setflags(write=False)  # shared by every caller of the cache
    return coverage


@dataclass(frozen=True)
class AnnotationComposition:
    """The composition of the analysed tissue inside one annotation.

    Attributes:
        uid: The annotation's uid.
        name: Its :meth:`Annotation.display_name` (its name, or e.g. ``"Rectangle 2"``, numbered
            by its position from 1).
        class_name: The annotation's own classification, or None.
        area_mm2: The annotation's area (whether analysed or not).
        analysed_area_mm2: Analysed area inside it (each cell weighed by the share covered).
        tiles: Done tiles whose centre is inside.
        classes: Per model class ``name, color, tiles, area_mm2, percent, mean_confidence``
            (percent of ``analysed_area_mm2``; mean confidence None without tiles).
    """

    uid: str
    name: str
    class_name: str | None
    area_mm2: float
    analysed_area_mm2: float
    tiles: int
    classes: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The entry of ``summary.json``'s ``annotations`` list."""
        return {
            "uid": self.uid,
            "name": self.name,
            "class_name": self.class_name,
            "area_mm2": self.area_mm2,
            "analysed_area_mm2": self.analysed_area_mm2,
            "tiles": self.tiles,
            "classes": [dict(c) for c in self.classes],
        }


def annotation_compositions(result: AnalysisResult, annotations: Sequence[Annotation]) -> list[AnnotationComposition]:
    """The composition of ``result`` inside each annotation, in the order given."""
    if not annotations:
        return []
    grid = result.grid
    p = result.provenance
    hm, cnt = result.heatmap()
    covered = cnt > 0
    hm_labels = np.full(cnt.shape, -1, dtype=np.int64)
    if np.any(covered):
        hm_labels[covered] = np.argmax(hm[covered], axis=1)
    mm2_per_l0px = (p.mpp / 1000.0) ** 2
    cell_mm2 = grid.cell_areas_l0() * mm2_per_l0px
    labels = result.labels()
    conf = result.confidences()
    done = result.status == TILE_DONE
    rects = result.rects().astype(np.float64)
    l0_centres = rects[:, :2] + rects[:, 2:] / 2.0

    out = []
    for i, annotation in enumerate(annotations):
        covered_mm2 = np.where(covered, cell_coverage(annotation, grid) * cell_mm2, 0.0)
        total_mm2 = float(covered_mm2.sum())
        tiles_inside = done & annotation.contains_points(l0_centres)
        classes = []
        for k, name in enumerate(result.class_names):
            sel = tiles_inside & (labels == k)
            area = float(covered_mm2[hm_labels == k].sum())
            classes.append(
                {
                    "name": name,
                    "color": p.class_colors[k],
                    "tiles": int(np.count_nonzero(sel)),
                    "area_mm2": round(area, 6),
                    "percent": round(100.0 * area / total_mm2, 4) if total_mm2 > 0 else 0.0,
                    "mean_confidence": round(float(np.mean(conf[sel])), 6) if np.any(sel) else None,
                }
            )
        out.append(
            AnnotationComposition(
                uid=annotation.uid,
                name=annotation.display_name(i + 1),
                class_name=annotation.path_class.name if annotation.path_class is not None else None,
                area_mm2=round(annotation.area_l0() * mm2_per_l0px, 6),
                analysed_area_mm2=round(total_mm2, 6),
                tiles=int(np.count_nonzero(tiles_inside)),
                classes=classes,
            )
        )
    return out

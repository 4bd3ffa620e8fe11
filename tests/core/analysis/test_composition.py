"""Class composition inside annotations, on a tiny analysis whose every number is worked out by hand.

The slide is 380 x 300 level-0 px at 1 µm/px, with 100 px tiles (no overlap): a 4 x 3 grid of
cells, the last column clipped to 80 px. A 100 x 100 cell is 0.01 mm², a clipped one 0.008 mm².
Top classes by (column, row), with the top-class probability in brackets:

    row 0:  A (0.7)   A (0.9)     B (0.6)   C (0.5)
    row 1:  A (0.8)   - pending   B (0.5)   C (0.5)
    row 2:  C (0.5)   C (0.5)     C (0.5)   C (0.5)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from chaoyang_desktop.core.slide.annotations import Annotation, PathClass
from chaoyang_desktop.core.analysis.composition import annotation_compositions
from chaoyang_desktop.core.analysis.results import AnalysisResult
from chaoyang_desktop.core.slide.roi import RoiPolygon
from chaoyang_desktop.core.slide.tiling import GridSpec
from tests.export.helpers import make_provenance

NAMES = ("A", "B", "C")
COLORS = ("#ff0000", "#00ff00", "#0000ff")
TOP = {
    (0, 0): (0, 0.7), (1, 0): (0, 0.9), (2, 0): (1, 0.6), (3, 0): (2, 0.5),
    (0, 1): (0, 0.8), (2, 1): (1, 0.5), (3, 1): (2, 0.5),
    (0, 2): (2, 0.5), (1, 2): (2, 0.5), (2, 2): (2, 0.5), (3, 2): (2, 0.5),
}
PENDING = (1, 1)


def _probs(top: int, p: float) -> list[float]:
    rest = (1.0 - p) / 2
    return [p if k == top else rest for k in range(3)]


@pytest.fixture
def result() -> AnalysisResult:
    grid = GridSpec(l0_width=380, l0_height=300, l0_stride=100, k=1, level=0, lv_downsample=1.0, lv_tile=100)
    provenance = dataclasses.replace(
        make_provenance(100.0), l0_width=380, l0_height=300, mpp=1.0, class_names=NAMES, class_colors=COLORS,
        tile_um=100.0, stride_um=100.0,
    )
    t_col, t_row = grid.all_tiles()
    r = AnalysisResult.empty(provenance, grid, t_col, t_row, np.ones(len(t_col)))
    done = [i for i, (c, rw) in enumerate(zip(t_col, t_row)) if (int(c), int(rw)) != PENDING]
    probs = np.array([_probs(*TOP[(int(t_col[i]), int(t_row[i]))]) for i in done], dtype=np.float32)
    r.set_batch(np.array(done), probs)
    return r


def _by_name(classes: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {c["name"]: c for c in classes}


def test_rectangle_over_six_cells_one_pending(result: AnalysisResult) -> None:
    # Tile centres x 50, 150, 250 and y 50, 150 are inside; (150, 150) is the pending tile.
    # Cell coverage: columns 0-1 wholly, column 2 three quarters (x 200-275); row 0 wholly, row 1
    # three quarters (y 100-175). The edges lie between the 4 x 4 sample points (12.5 + 25 k), so
    # the sampled shares are the true ones.
    a = Annotation.rectangle(0, 0, 275, 175, name="Front", path_class=PathClass("Tumor", (200, 0, 0)))
    (comp,) = annotation_compositions(result, [a])
    assert (comp.uid, comp.name, comp.class_name) == (a.uid, "Front", "Tumor")
    assert comp.area_mm2 == pytest.approx(275 * 175 * 1e-6)
    # A: (0,0) 1 + (1,0) 1 + (0,1) 0.75; B: (2,0) 0.75 + (2,1) 0.5625; cells of 0.01 mm².
    assert comp.analysed_area_mm2 == pytest.approx(0.040625)
    assert comp.tiles == 5
    c = _by_name(comp.classes)
    assert c["A"]["tiles"] == 3 and c["A"]["area_mm2"] == pytest.approx(0.0275)
    assert c["A"]["percent"] == pytest.approx(100 * 0.0275 / 0.040625, abs=1e-4)
    assert c["A"]["mean_confidence"] == pytest.approx((0.7 + 0.9 + 0.8) / 3, abs=1e-6)
    assert c["B"]["tiles"] == 2 and c["B"]["area_mm2"] == pytest.approx(0.013125)
    assert c["B"]["percent"] == pytest.approx(100 * 0.013125 / 0.040625, abs=1e-4)
    assert c["B"]["mean_confidence"] == pytest.approx(0.55, abs=1e-6)
    assert c["C"] == {"name": "C", "color": "#0000ff", "tiles": 0, "area_mm2": 0.0, "percent": 0.0,
                      "mean_confidence": None}


def test_an_annotation_smaller_than_a_cell_takes_its_class(result: AnalysisResult) -> None:
    # A 30 x 30 px square in the corner of the B cell (2, 0): not its tile's centre (250, 50), and
    # 1 of its 16 sample points (212.5, 12.5).
    (comp,) = annotation_compositions(result, [Annotation.rectangle(205, 5, 235, 35)])
    assert comp.tiles == 0
    c = _by_name(comp.classes)
    assert c["B"]["percent"] == 100.0 and c["B"]["area_mm2"] == pytest.approx(0.01 / 16)  # 1 of 16 samples
    assert c["B"]["tiles"] == 0 and c["B"]["mean_confidence"] is None


def test_clipped_edge_cells_count_their_clipped_area(result: AnalysisResult) -> None:
    # The last column (x 300 to 380, clipped): three C cells of 80 x 100 px.
    a = Annotation.rectangle(290, -10, 390, 310)
    (comp,) = annotation_compositions(result, [Annotation.rectangle(0, 0, 1, 1), a])[1:]
    assert comp.name == "Rectangle 2" and comp.class_name is None
    assert comp.area_mm2 == pytest.approx(100 * 320 * 1e-6)
    assert comp.analysed_area_mm2 == pytest.approx(0.024) and comp.tiles == 3
    c = _by_name(comp.classes)
    assert c["C"]["area_mm2"] == pytest.approx(0.024) and c["C"]["percent"] == 100.0 and c["C"]["tiles"] == 3
    assert c["A"]["percent"] == 0.0 and c["B"]["tiles"] == 0


def test_a_hole_leaves_out_the_cells_inside_it(result: AnalysisResult) -> None:
    # The rectangle above, less a hole over every sample point of cell (0, 1) inside it and over
    # the centre (50, 150) of its A tile.
    outer = np.array([[0, 0], [275, 0], [275, 175], [0, 175]], dtype=float)
    hole = np.array([[5, 105], [95, 105], [95, 170], [5, 170]], dtype=float)
    (comp,) = annotation_compositions(result, [Annotation(polygons=(RoiPolygon(outer, (hole,)),))])
    assert comp.area_mm2 == pytest.approx((275 * 175 - 90 * 65) * 1e-6)
    assert comp.analysed_area_mm2 == pytest.approx(0.033125) and comp.tiles == 4
    c = _by_name(comp.classes)
    assert c["A"]["tiles"] == 2 and c["A"]["area_mm2"] == pytest.approx(0.02)
    assert c["A"]["mean_confidence"] == pytest.approx(0.8, abs=1e-6)  # (0.7 + 0.9) / 2
    assert c["B"]["area_mm2"] == pytest.approx(0.013125)


def test_outside_the_analysed_tissue(result: AnalysisResult) -> None:
    (comp,) = annotation_compositions(result, [Annotation.rectangle(1000, 1000, 1200, 1100)])
    assert comp.analysed_area_mm2 == 0.0 and comp.tiles == 0
    assert all(c["percent"] == 0.0 and c["tiles"] == 0 and c["mean_confidence"] is None for c in comp.classes)


def test_the_whole_slide_gives_the_slide_summary(result: AnalysisResult) -> None:
    (comp,) = annotation_compositions(result, [Annotation.rectangle(-1, -1, 400, 400)])
    summary = result.summary()
    assert comp.classes == summary["classes"]
    assert comp.analysed_area_mm2 == summary["analysed_area_mm2"] and comp.tiles == summary["tiles_done"]


def test_to_dict_and_no_annotations(result: AnalysisResult) -> None:
    assert annotation_compositions(result, []) == []
    a = Annotation.rectangle(10, 10, 260, 160, name="Front")
    d = annotation_compositions(result, [a])[0].to_dict()
    assert list(d) == ["uid", "name", "class_name", "area_mm2", "analysed_area_mm2", "tiles", "classes"]
    assert d["uid"] == a.uid and d["class_name"] is None and len(d["classes"]) == 3

"""Regions of interest from QuPath GeoJSON and from drawn polygons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chaoyang_desktop.core.errors import RoiError
from chaoyang_desktop.core.slide.roi import Roi, load_roi


def _square(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def _feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    # The shape QuPath 0.4+ writes for an annotation.
    return {
        "type": "Feature",
        "id": "0f0c2a4e-1111-2222-3333-444455556666",
        "geometry": geometry,
        "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}, **props},
    }


def _write(tmp_path: Path, obj: Any, name: str = "roi.geojson") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_feature_collection_polygon_with_hole(tmp_path: Path) -> None:
    polygon = {"type": "Polygon", "coordinates": [_square(100, 100, 500, 400), _square(200, 200, 300, 300)]}
    point = {"type": "Point", "coordinates": [10, 10]}
    path = _write(tmp_path, {"type": "FeatureCollection", "features": [_feature(polygon), _feature(point)]})
    roi = load_roi(path)
    assert len(roi.polygons) == 1 and len(roi.polygons[0].holes) == 1
    assert roi.polygons[0].exterior.shape == (4, 2)  # closing point dropped
    assert roi.source == str(path)
    assert any("Point" in note for note in roi.notes)
    assert roi.bounds() == (100, 100, 500, 400)
    assert roi.area_l0() == 400 * 300 - 100 * 100
    mask = roi.rasterize(600, 500, 1.0, 1.0)
    assert mask.sum() == 400 * 300 - 100 * 100
    assert mask[150, 150] and not mask[250, 250] and not mask[50, 50]
    coarse = roi.rasterize(120, 100, 5.0, 5.0)
    assert coarse.sum() == (400 * 300 - 100 * 100) / 25


def test_multipolygon_and_list_of_features(tmp_path: Path) -> None:
    multi = {
        "type": "MultiPolygon",
        "coordinates": [[_square(0, 0, 100, 100)], [_square(200, 0, 300, 50), _square(220, 10, 240, 30)]],
    }
    line = {"type": "LineString", "coordinates": [[0, 0], [5, 5]]}
    extra = {"type": "Polygon", "coordinates": [_square(0, 200, 50, 250)]}
    path = _write(tmp_path, [_feature(multi), _feature(line), _feature(extra)])
    roi = load_roi(path)
    assert len(roi.polygons) == 3
    assert roi.rasterize(400, 300, 1.0, 1.0).sum() == 100 * 100 + 100 * 50 - 20 * 20 + 50 * 50
    assert roi.bounds() == (0, 0, 300, 250)


def test_bare_geometry_and_single_feature(tmp_path: Path) -> None:
    geometry = {"type": "Polygon", "coordinates": [_square(10, 10, 20, 30)]}
    assert load_roi(_write(tmp_path, geometry, "g.json")).rasterize(40, 40, 1, 1).sum() == 200
    assert load_roi(_write(tmp_path, _feature(geometry), "f.json")).area_l0() == 200


def test_rasterize_scales_and_clips() -> None:
    roi = Roi.from_polygon_points([(-100, -100), (1000, 400)])  # a rectangle partly off the slide
    mask = roi.rasterize(50, 50, 10.0, 10.0)
    assert mask[:40, :].all() and not mask[40:, :].any()
    triangle = Roi.from_polygon_points([(0, 0), (1000, 0), (0, 1000)])
    area = triangle.rasterize(100, 100, 10.0, 10.0).sum()
    assert abs(area - 5000) < 100  # half of the 100 x 100 mask, up to the diagonal's pixels


def test_round_trip(tmp_path: Path) -> None:
    polygon = {"type": "Polygon", "coordinates": [_square(100, 100, 500, 400), _square(200, 200, 300, 300)]}
    first = load_roi(_write(tmp_path, _feature(polygon)))
    geojson = first.to_geojson()
    assert geojson["type"] == "FeatureCollection"
    again = load_roi(_write(tmp_path, geojson, "again.geojson"))
    assert len(again.polygons) == 1
    np.testing.assert_array_equal(again.polygons[0].exterior, first.polygons[0].exterior)
    np.testing.assert_array_equal(again.polygons[0].holes[0], first.polygons[0].holes[0])
    assert json.loads(json.dumps(geojson)) == geojson


def test_from_polygon_points() -> None:
    roi = Roi.from_polygon_points([(10, 10), (50, 10), (30, 40)])
    assert roi.source == "drawn" and roi.area_l0() == 600
    rect = Roi.from_polygon_points(np.array([[40, 30], [10, 10]]))
    assert rect.bounds() == (10, 10, 40, 30) and rect.area_l0() == 600
    with pytest.raises(RoiError):
        Roi.from_polygon_points([(0, 0), (10, 10), (20, 20)])  # collinear
    with pytest.raises(RoiError):
        Roi.from_polygon_points([(5, 5), (5, 20)])  # zero-width rectangle


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(RoiError, match="does not exist"):
        load_roi(tmp_path / "missing.geojson")
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with pytest.raises(RoiError, match="not valid JSON"):
        load_roi(bad)
    points_only = {"type": "FeatureCollection", "features": [_feature({"type": "Point", "coordinates": [1, 2]})]}
    with pytest.raises(RoiError, match="no polygon"):
        load_roi(_write(tmp_path, points_only, "points.geojson"))
    with pytest.raises(RoiError):
        load_roi(_write(tmp_path, {"features": []}, "notype.geojson"))
    with pytest.raises(RoiError, match="numbers"):
        load_roi(_write(tmp_path, {"type": "Polygon", "coordinates": [[["a", "b"], [1, 2], [3, 4]]]}, "nan.geojson"))
    assert isinstance(RoiError("x"), ValueError)

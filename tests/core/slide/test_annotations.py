"""Annotations: shapes, edits, hit tests, QuPath GeoJSON round trips, files and undo/redo.

Expected values are worked out by hand (areas of rectangles, triangles, trapezoids, the regular
72-gon) or written out literally, as QuPath writes them; none is computed by the code under test.
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chaoyang_desktop.core.slide.annotations import (
    QUPATH_DEFAULT_CLASSES,
    SHAPES,
    Annotation,
    AnnotationHistory,
    PathClass,
    annotations_from_geojson,
    annotations_to_geojson,
    read_annotations_file,
    write_annotations_file,
)
from chaoyang_desktop.core.errors import AnnotationError, ChaoyangError, OutputError
from chaoyang_desktop.core.slide.roi import Roi, RoiPolygon

TUMOR = PathClass("Tumor", (200, 0, 0))


def _ring(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=np.float64)


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message
    return message


# ----- constructors ----------------------------------------------------------------------------------
def test_qupath_default_classes_and_shapes() -> None:
    assert [(c.name, c.color) for c in QUPATH_DEFAULT_CLASSES] == [
        ("Tumor", (200, 0, 0)), ("Stroma", (150, 200, 150)), ("Immune cells", (160, 90, 160)),
        ("Necrosis", (50, 50, 50)), ("Other", (255, 200, 0)), ("Region*", (0, 0, 180)),
        ("Ignore*", (180, 180, 180)),
    ]
    assert SHAPES == ("rectangle", "ellipse", "polygon", "freehand")


def test_rectangle_from_corners_in_any_order() -> None:
    a = Annotation.rectangle(110, 70, 10, 20, name="Box", path_class=TUMOR)
    np.testing.assert_array_equal(a.vertices(), [[10, 20], [110, 20], [110, 70], [10, 70]])
    assert a.shape == "rectangle" and a.name == "Box" and a.path_class == TUMOR
    assert a.area_l0() == 100 * 50
    assert a.bounds() == (10.0, 20.0, 110.0, 70.0)
    assert str(uuid.UUID(a.uid)) == a.uid and uuid.UUID(a.uid).version == 4
    assert Annotation.rectangle(0, 0, 1, 1).uid != Annotation.rectangle(0, 0, 1, 1).uid
    assert Annotation.rectangle(0, 0, 1, 1, uid="fixed").uid == "fixed"


def test_ellipse_is_a_72_gon_inscribed_in_its_box() -> None:
    a = Annotation.ellipse(0, 0, 200, 100)
    v = a.vertices()
    assert a.shape == "ellipse" and v.shape == (72, 2)
    # Every vertex lies on the ellipse centred (100, 50) with radii 100 and 50...
    np.testing.assert_allclose(((v[:, 0] - 100) / 100) ** 2 + ((v[:, 1] - 50) / 50) ** 2, 1.0, rtol=1e-12)
    np.testing.assert_allclose(v[0], [200, 50], atol=1e-12)
    np.testing.assert_allclose(v[18], [100, 100], atol=1e-12)  # a quarter turn later (every 5 degrees)
    # ...and the area is that of the affine image of a regular 72-gon: 72/2 * rx * ry * sin(5 deg).
    assert a.area_l0() == pytest.approx(36 * 100 * 50 * math.sin(math.radians(5)), rel=1e-12)
    assert a.area_l0() == pytest.approx(math.pi * 100 * 50, rel=2e-3)


def test_polygon_drops_the_closing_point() -> None:
    a = Annotation.polygon([(0, 0), (4, 0), (0, 3), (0, 0)])
    np.testing.assert_array_equal(a.vertices(), [[0, 0], [4, 0], [0, 3]])
    assert a.shape == "polygon" and a.area_l0() == 6.0


def test_freehand_drops_consecutive_duplicates() -> None:
    a = Annotation.freehand(np.array([(0, 0), (0, 0), (10, 0), (10, 0), (10, 0), (10, 10), (0, 10), (0, 0)]))
    np.testing.assert_array_equal(a.vertices(), [[0, 0], [10, 0], [10, 10], [0, 10]])
    assert a.shape == "freehand" and a.area_l0() == 100.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: Annotation.rectangle(5, 5, 5, 50),
        lambda: Annotation.rectangle(5, 5, 50, 5),
        lambda: Annotation.ellipse(0, 0, 10, 0),
        lambda: Annotation.polygon([(0, 0), (1, 1), (2, 2)]),
        lambda: Annotation.polygon([(0, 0), (1, 1)]),
        lambda: Annotation.polygon([]),
        lambda: Annotation.freehand([(3, 3)] * 20),
        lambda: Annotation.freehand([(0, 0), (5, 0), (5, 0), (0, 0)]),
    ],
    ids=["rect-no-width", "rect-no-height", "ellipse-flat", "collinear", "two-points", "empty", "one-point", "back-and-forth"],
)
def test_shapes_without_area_are_refused(make: Any) -> None:
    with pytest.raises(AnnotationError) as info:
        make()
    assert _one_line(info.value).startswith("The annotation has no area; d")
    assert isinstance(info.value, ChaoyangError) and isinstance(info.value, ValueError)


def test_non_finite_points_are_refused() -> None:
    with pytest.raises(AnnotationError, match="finite"):
        Annotation.polygon([(0, 0), (float("nan"), 1), (2, 0)])
    with pytest.raises(AnnotationError, match="finite"):
        Annotation.rectangle(0, 0, float("inf"), 3)


def test_an_annotation_needs_a_polygon_and_a_known_shape() -> None:
    with pytest.raises(AnnotationError):
        Annotation(polygons=())
    with pytest.raises(ValueError, match="shape"):
        Annotation(polygons=(RoiPolygon(_ring((0, 0), (1, 0), (0, 1))),), shape="circle")


# ----- edits -----------------------------------------------------------------------------------------
def test_moving_a_vertex_makes_a_rectangle_a_polygon() -> None:
    square = Annotation.rectangle(0, 0, 10, 10, name="sq", path_class=TUMOR)
    edited = square.with_vertex(2, 20, 10)  # (10, 10) -> (20, 10): a trapezoid, sides 10 and 20, height 10
    assert edited.area_l0() == 150.0
    assert edited.shape == "polygon" and edited.uid == square.uid
    assert (edited.name, edited.path_class) == ("sq", TUMOR)
    np.testing.assert_array_equal(square.vertices(), [[0, 0], [10, 0], [10, 10], [0, 10]])  # unchanged
    assert Annotation.ellipse(0, 0, 10, 10).with_vertex(0, 20, 5).shape == "polygon"
    assert Annotation.freehand([(0, 0), (10, 0), (0, 10)]).with_vertex(0, -1, -1).shape == "freehand"


def test_inserting_and_removing_vertices() -> None:
    square = Annotation.rectangle(0, 0, 10, 10)
    spiked = square.inserted_vertex(0, 5, -5)  # a triangle of base 10 and height 5 added below
    np.testing.assert_array_equal(spiked.vertices(), [[0, 0], [5, -5], [10, 0], [10, 10], [0, 10]])
    assert spiked.area_l0() == 125.0 and spiked.shape == "polygon"
    np.testing.assert_array_equal(square.inserted_vertex(3, -5, 5).vertices()[-1], [-5, 5])  # after the last
    triangle = square.without_vertex(1)
    np.testing.assert_array_equal(triangle.vertices(), [[0, 0], [10, 10], [0, 10]])
    assert triangle.area_l0() == 50.0
    with pytest.raises(AnnotationError, match="at least three vertices") as info:
        triangle.without_vertex(0)
    _one_line(info.value)
    with pytest.raises(IndexError):
        square.with_vertex(4, 0, 0)


def test_an_edit_that_leaves_no_area_is_refused() -> None:
    triangle = Annotation.polygon([(0, 0), (10, 0), (0, 10)])
    with pytest.raises(AnnotationError, match="without area"):
        triangle.with_vertex(2, 5, 0)  # onto the base: all three on one line
    with pytest.raises(AnnotationError):
        triangle.with_vertex(1, 0, 0)  # onto another vertex


def test_move_rename_classify_keep_identity_and_holes() -> None:
    holed = Annotation(
        polygons=(RoiPolygon(_ring((0, 0), (10, 0), (10, 10), (0, 10)), (_ring((4, 4), (6, 4), (6, 6)),)),),
        shape="rectangle",
    )
    moved = holed.moved(100, -5)
    np.testing.assert_array_equal(moved.vertices(), [[100, -5], [110, -5], [110, 5], [100, 5]])
    np.testing.assert_array_equal(moved.polygons[0].holes[0], [[104, -1], [106, -1], [106, 1]])
    assert moved.shape == "rectangle" and moved.uid == holed.uid
    assert moved.area_l0() == 100 - 2  # the hole is a right triangle with legs 2
    named = moved.renamed("  Tumour front ")
    assert named.name == "Tumour front" and named.uid == holed.uid
    assert named.classified(TUMOR).path_class == TUMOR
    assert named.classified(TUMOR).classified(None).path_class is None


def test_display_name() -> None:
    assert Annotation.rectangle(0, 0, 1, 1).display_name(3) == "Rectangle 3"
    assert Annotation.freehand([(0, 0), (1, 0), (0, 1)]).display_name(1) == "Freehand 1"
    assert Annotation.rectangle(0, 0, 1, 1, name="Margin").display_name(3) == "Margin"


def test_extra_is_a_private_read_only_copy() -> None:
    props = {"isLocked": True, "measurements": {"Area": 1.0}}
    a = Annotation.rectangle(0, 0, 1, 1, extra=props)
    props["measurements"]["Area"] = 2.0
    assert a.extra["measurements"] == {"Area": 1.0}
    with pytest.raises(TypeError):
        a.extra["isLocked"] = False  # type: ignore[index]


def test_roi_of_an_annotation() -> None:
    a = Annotation.rectangle(0, 0, 4, 2, name="ROI 1")
    roi = a.roi()
    assert isinstance(roi, Roi) and roi.source == "ROI 1" and roi.area_l0() == 8.0
    assert Annotation.rectangle(0, 0, 4, 2).roi().source == "annotation"


# ----- hit test --------------------------------------------------------------------------------------
def test_contains_excludes_holes_and_covers_every_polygon() -> None:
    a = Annotation(
        polygons=(
            RoiPolygon(_ring((0, 0), (100, 0), (100, 100), (0, 100)), (_ring((40, 40), (60, 40), (60, 60), (40, 60)),)),
            RoiPolygon(_ring((200, 0), (300, 0), (250, 80))),
        )
    )
    assert a.contains(10, 10) and a.contains(90, 50)
    assert not a.contains(50, 50)  # in the hole
    assert a.contains(250, 40)  # in the triangle
    assert not a.contains(150, 50) and not a.contains(-1, 50) and not a.contains(250, 90)
    np.testing.assert_array_equal(a.contains_points(np.array([[10, 10], [50, 50], [250, 40]])), [True, False, True])


def test_contains_agrees_with_rasterize_at_pixel_centres() -> None:
    # A concave freehand outline with a hole: each mask pixel is inside exactly when its centre is.
    a = Annotation(
        polygons=(RoiPolygon(_ring((1.3, 0.7), (17.2, 3.1), (9.0, 9.4), (18.6, 17.9), (2.2, 15.5)),
                             (_ring((4.1, 6.2), (7.7, 6.0), (6.3, 11.1)),)),),
        shape="freehand",
    )
    mask = a.roi().rasterize(20, 20, 1.0, 1.0)
    rows, cols = np.mgrid[0:20, 0:20]
    centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
    np.testing.assert_array_equal(a.contains_points(centres).reshape(20, 20), mask)
    assert 0 < mask.sum() < 400


# ----- GeoJSON ---------------------------------------------------------------------------------------
def _closed(points: list[list[float]]) -> list[list[float]]:
    return points + [points[0]]


def test_written_features_have_qupaths_layout() -> None:
    rect = Annotation.rectangle(0, 0, 2, 1, uid="11111111-2222-4333-8444-555555555555", name="R", path_class=TUMOR)
    plain = Annotation.polygon([(0, 0), (4, 0), (0, 3)])
    doc = annotations_to_geojson([rect, plain])
    assert doc["type"] == "FeatureCollection"
    first, second = doc["features"]
    assert first == {
        "type": "Feature",
        "id": "11111111-2222-4333-8444-555555555555",
        "geometry": {"type": "Polygon", "coordinates": [[[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]},
        "properties": {
            "objectType": "annotation",
            "name": "R",
            "classification": {"name": "Tumor", "color": [200, 0, 0]},
            "metadata": {"chaoyang_shape": "rectangle"},
        },
    }
    # No name and no class: the keys are left out, as QuPath does.
    assert second["properties"] == {"objectType": "annotation", "metadata": {"chaoyang_shape": "polygon"}}
    json.dumps(doc, allow_nan=False)  # plain JSON


# The kind of file QuPath 0.5 writes with File > Export objects as GeoJSON (FeatureCollection),
# written out by hand: a classified, locked polygon with measurements; a two-part multipolygon
# whose first part has a hole; a detection, a cell, a point annotation and a line annotation.
QUPATH_DOC: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": "6c1c7d36-2a53-4a3e-9d64-0c1ec5d2d0a1",
            "geometry": {"type": "Polygon", "coordinates": [[
                [1023.5, 2047.25], [1536.75, 2047.25], [1700.0000000000002, 2600.1], [0.30000000000000004, 2600.1],
                [1023.5, 2047.25],
            ]]},
            "properties": {
                "objectType": "annotation",
                "name": "Tumour front",
                "classification": {"name": "Tumor", "color": [200, 0, 0]},
                "isLocked": True,
                "measurements": {"Num Detections": 12},
            },
        },
        {
            "type": "Feature",
            "id": "0b6f9a52-77e1-4c1a-b4b3-6a7d40f9a8e2",
            "geometry": {"type": "MultiPolygon", "coordinates": [
                [
                    [[0, 0], [1000, 0], [1000, 1000], [0, 1000], [0, 0]],
                    [[250.125, 250.125], [250.125, 750.5], [750.5, 750.5], [750.5, 250.125], [250.125, 250.125]],
                ],
                [[[2000, 2000], [2999.999999, 2000], [2500, 2866.0254037844386], [2000, 2000]]],
            ]},
            "properties": {
                "objectType": "annotation",
                "classification": {"name": "Stroma", "color": [150, 200, 150]},
                "color": [10, 20, 30],
                "metadata": {"source": "pathologist A"},
            },
        },
        {
            "type": "Feature",
            "id": "7e6b0c1e-1c4e-4a33-9f5f-1b2f7c3e9d10",
            "geometry": {"type": "Polygon", "coordinates": [[[5, 5], [9, 5], [9, 9], [5, 5]]]},
            "properties": {"objectType": "detection", "classification": {"name": "Tumor", "color": [200, 0, 0]}},
        },
        {
            "type": "Feature",
            "id": "2d1e6f4a-8b9c-4d0e-a1f2-3b4c5d6e7f80",
            "geometry": {"type": "Polygon", "coordinates": [[[7, 7], [8, 7], [8, 8], [7, 7]]]},
            "nucleusGeometry": {"type": "Polygon", "coordinates": [[[7.2, 7.2], [7.8, 7.2], [7.8, 7.8], [7.2, 7.2]]]},
            "properties": {"objectType": "cell"},
        },
        {
            "type": "Feature",
            "id": "a5b6c7d8-1111-4222-8333-944455556666",
            "geometry": {"type": "Point", "coordinates": [10, 10]},
            "properties": {"objectType": "annotation"},
        },
        {
            "type": "Feature",
            "id": "b5b6c7d8-1111-4222-8333-944455556666",
            "geometry": {"type": "LineString", "coordinates": [[0, 0], [10, 10]]},
            "properties": {"objectType": "annotation"},
        },
    ],
}


def test_reading_a_qupath_export() -> None:
    imported = annotations_from_geojson(json.loads(json.dumps(QUPATH_DOC)), source="case.geojson")
    front, stroma = imported.annotations
    assert front.uid == "6c1c7d36-2a53-4a3e-9d64-0c1ec5d2d0a1"
    assert front.name == "Tumour front" and front.path_class == PathClass("Tumor", (200, 0, 0))
    assert front.shape == "polygon"  # QuPath says nothing of how it was drawn
    np.testing.assert_array_equal(
        front.vertices(),
        [[1023.5, 2047.25], [1536.75, 2047.25], [1700.0000000000002, 2600.1], [0.30000000000000004, 2600.1]],
    )
    assert dict(front.extra) == {"isLocked": True, "measurements": {"Num Detections": 12}}
    assert stroma.name == "" and stroma.path_class == PathClass("Stroma", (150, 200, 150))
    assert len(stroma.polygons) == 2 and len(stroma.polygons[0].holes) == 1
    # Area by hand: a 1000 x 1000 square less a 500.375 x 500.375 hole, plus the triangle.
    triangle = 0.5 * abs(2999.999999 - 2000) * (2866.0254037844386 - 2000)
    assert stroma.area_l0() == pytest.approx(1000 * 1000 - 500.375**2 + triangle, rel=1e-12)
    assert dict(stroma.extra) == {"color": [10, 20, 30], "metadata": {"source": "pathologist A"}}
    assert imported.notes == [
        "case.geojson: skipped 1 detection object (only annotations are imported).",
        "case.geojson: skipped 1 cell object (only annotations are imported).",
        "case.geojson: skipped 1 Point geometry (only polygons are imported).",
        "case.geojson: skipped 1 LineString geometry (only polygons are imported).",
    ]


def test_qupath_round_trip_is_bit_exact() -> None:
    first = annotations_from_geojson(json.loads(json.dumps(QUPATH_DOC))).annotations
    first = [first[0], first[1].renamed("Stroma band"), Annotation.ellipse(0.1, 0.2, 333.3, 77.7, path_class=TUMOR),
             Annotation.freehand([(1 / 3, 2 / 3), (1e-7, 5.5), (123456.789, 0.1 + 0.2)])]
    text = json.dumps(annotations_to_geojson(first))
    again = annotations_from_geojson(json.loads(text)).annotations
    assert len(again) == len(first)
    for a, b in zip(first, again):
        assert (a.uid, a.name, a.path_class, a.shape, dict(a.extra)) == (b.uid, b.name, b.path_class, b.shape, dict(b.extra))
        assert len(a.polygons) == len(b.polygons)
        for pa, pb in zip(a.polygons, b.polygons):
            assert pa.exterior.tobytes() == pb.exterior.tobytes()  # same bits, same vertex order
            assert [h.tobytes() for h in pa.holes] == [h.tobytes() for h in pb.holes]
    # The geometry written back is the very geometry QuPath wrote (rings closed, order kept).
    written = json.loads(text)["features"]
    assert written[0]["geometry"] == QUPATH_DOC["features"][0]["geometry"]
    assert json.loads(json.dumps(written[1]["geometry"])) == json.loads(json.dumps(QUPATH_DOC["features"][1]["geometry"]))
    assert written[1]["properties"]["metadata"] == {"source": "pathologist A", "chaoyang_shape": "polygon"}
    assert written[1]["properties"]["color"] == [10, 20, 30]


def test_legacy_qupath_files() -> None:
    # QuPath 0.2/0.3: a bare list of features, the Java class name as "id", classification as
    # Gson's dump with a packed, signed ARGB "colorRGB" (0xFF96C896 for Stroma's 150, 200, 150).
    legacy = [
        {
            "type": "Feature",
            "id": "PathAnnotationObject",
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]},
            "properties": {"classification": {"name": "Stroma", "colorRGB": -6895466}, "isLocked": False},
        },
        {
            "type": "Feature",
            "id": "PathDetectionObject",
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
            "properties": {"classification": {"name": "Tumor", "colorRGB": -3670016}},
        },
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [5, 5], [0, 0]]]},
            "properties": {"object_type": "annotation",
                           "classification": {"name": "Positive", "colorRGB": -65536,
                                              "parentClass": {"name": "Tumor", "colorRGB": -3670016}}},
        },
    ]
    imported = annotations_from_geojson(legacy)
    stroma, derived = imported.annotations
    assert stroma.path_class == PathClass("Stroma", (150, 200, 150))
    assert str(uuid.UUID(stroma.uid)) == stroma.uid  # the class name is not an id: a new one is made
    assert derived.path_class == PathClass("Tumor: Positive", (255, 0, 0))
    assert imported.notes == ["The GeoJSON: skipped 1 detection object (only annotations are imported)."]


def test_other_classification_forms() -> None:
    def cls_of(classification: Any) -> PathClass | None:
        feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 1]]]},
                   "properties": {"classification": classification}}
        return annotations_from_geojson(feature).annotations[0].path_class

    assert cls_of({"names": ["Tumor", "Positive"], "color": [1, 2, 3]}) == PathClass("Tumor: Positive", (1, 2, 3))
    assert cls_of({"name": "Immune cells", "color": [160, 90, 160, 128]}) == PathClass("Immune cells", (160, 90, 160))
    assert cls_of("Necrosis") == PathClass("Necrosis", (50, 50, 50))  # a bare name: QuPath's default colour
    assert cls_of({}) is None and cls_of(None) is None
    custom = cls_of({"name": "Mucin"})
    assert custom is not None and custom.name == "Mucin" and custom == cls_of({"name": "Mucin"})  # stable colour


def test_bare_feature_geometry_and_duplicate_ids() -> None:
    polygon = {"type": "Polygon", "coordinates": [[[0, 0], [3, 0], [0, 3], [0, 0]]]}
    bare = annotations_from_geojson(polygon)
    assert len(bare.annotations) == 1 and bare.annotations[0].area_l0() == 4.5
    feature = {"type": "Feature", "id": "same", "geometry": polygon, "properties": {"name": "x"}}
    assert annotations_from_geojson(feature).annotations[0].uid == "same"
    twice = annotations_from_geojson({"type": "FeatureCollection", "features": [feature, feature]})
    a, b = twice.annotations
    assert a.uid == "same" and b.uid != "same"
    assert twice.notes == ["The GeoJSON: 1 feature id(s) repeated an earlier one and were given new ids."]


def test_degenerate_and_malformed_parts_are_skipped_with_notes() -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[["a", 0], [1, 1], [2, 0]]]}},
        {"type": "Feature", "geometry": None, "properties": {}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [0, 9]]]}},
    ]}
    imported = annotations_from_geojson(doc, source="f.json")
    assert len(imported.annotations) == 1
    assert imported.notes == [
        "f.json: skipped 1 polygon without area.",
        "f.json: skipped 1 feature whose coordinates are not [x, y] numbers.",
        "f.json: skipped 1 feature without a geometry.",
    ]


def test_nothing_usable_is_an_error() -> None:
    only_points = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [3, 4]}, "properties": {}},
    ]}
    with pytest.raises(AnnotationError, match=r"holds no annotation polygon \(.*skipped 2 Point geometries") as info:
        annotations_from_geojson(only_points, source="pts.geojson")
    _one_line(info.value)
    for not_geojson in (42, {"features": []}, [1, 2], "text"):
        with pytest.raises(AnnotationError, match="is not GeoJSON"):
            annotations_from_geojson(not_geojson)
    with pytest.raises(AnnotationError, match="holds no annotation"):
        annotations_from_geojson({"type": "FeatureCollection", "features": []})


# ----- files -----------------------------------------------------------------------------------------
def test_file_round_trip_and_bom(tmp_path: Path) -> None:
    annotations = [Annotation.rectangle(0.5, 0.25, 10.125, 7, name="Ünïcode 名", path_class=TUMOR),
                   Annotation.ellipse(0, 0, 30, 20)]
    path = tmp_path / "a.geojson"
    write_annotations_file(path, annotations)
    assert [p.name for p in tmp_path.iterdir()] == ["a.geojson"]  # no temporary left behind
    back = read_annotations_file(path)
    assert [a.uid for a in back.annotations] == [a.uid for a in annotations]
    assert back.annotations[0].name == "Ünïcode 名" and back.notes == []
    np.testing.assert_array_equal(back.annotations[1].vertices(), annotations[1].vertices())
    bom = tmp_path / "bom.geojson"
    bom.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(read_annotations_file(bom).annotations) == 2


def test_file_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="does not exist; choose another file") as info:
        read_annotations_file(tmp_path / "missing.geojson")
    _one_line(info.value)
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection",\n  "features": [,]}', encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"bad.geojson is not valid JSON \(line 2, column 16") as info:
        read_annotations_file(bad)
    _one_line(info.value)
    other = tmp_path / "other.json"
    other.write_text('{"hello": "world"}', encoding="utf-8")
    with pytest.raises(AnnotationError, match="other.json is not GeoJSON") as info:
        read_annotations_file(other)
    _one_line(info.value)
    binary = tmp_path / "slide.svs"
    binary.write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(AnnotationError, match="not a UTF-8 text file"):
        read_annotations_file(binary)
    with pytest.raises(OutputError):
        write_annotations_file(tmp_path / "no" / "such" / "folder.geojson", [Annotation.rectangle(0, 0, 1, 1)])


# ----- history ---------------------------------------------------------------------------------------
def test_history_undo_redo() -> None:
    history = AnnotationHistory()
    calls: list[int] = []
    history.listeners.append(lambda: calls.append(len(history.state)))
    assert history.undo() is None and history.redo() is None
    assert not history.can_undo and history.undo_label is None
    a = Annotation.rectangle(0, 0, 10, 10)
    b = Annotation.ellipse(0, 0, 5, 5)
    history.add(a)
    history.add(b, "Draw ellipse")
    moved = a.moved(5, 5)
    history.replace(moved, "Move annotation")
    assert history.state == (moved, b) and history.by_uid(a.uid) is moved
    assert history.undo_label == "Move annotation"
    assert history.undo() == "Move annotation"
    assert history.state == (a, b) and history.redo_label == "Move annotation"
    assert history.undo() == "Draw ellipse" and history.state == (a,)
    assert history.redo() == "Draw ellipse" and history.state == (a, b)
    history.remove([a.uid], "Delete annotation")
    assert history.state == (b,) and not history.can_redo  # a new step drops what was undone
    assert history.undo() == "Delete annotation" and history.state == (a, b)
    history.remove(b.uid, "Delete annotation")  # one uid as a plain string
    assert history.state == (a,)
    assert calls == [1, 2, 2, 2, 1, 2, 1, 2, 1]
    assert history.by_uid("nope") is None
    with pytest.raises(KeyError):
        history.replace(b, "Move annotation")  # b is no longer there


def test_history_ignores_no_change_and_refuses_duplicate_uids() -> None:
    a = Annotation.rectangle(0, 0, 10, 10)
    history = AnnotationHistory([a])
    history.apply((a,), "Nothing")
    history.remove(["unknown"], "Delete annotation")
    assert not history.can_undo
    with pytest.raises(ValueError, match="share a uid"):
        history.add(a.renamed("copy"))
    history.reset()
    assert history.state == () and not history.can_undo and not history.can_redo


def test_history_keeps_at_most_200_steps() -> None:
    history = AnnotationHistory()
    a = Annotation.rectangle(0, 0, 10, 10)
    history.add(a, "step 0")
    for i in range(1, 250):
        history.replace(history.state[0].moved(1, 0), f"step {i}")
    labels = []
    while (label := history.undo()) is not None:
        labels.append(label)
    assert len(labels) == 200 and labels[0] == "step 249" and labels[-1] == "step 50"
    assert history.state[0].bounds() == (49.0, 0.0, 59.0, 10.0)  # the state before step 50
    history.reset([a])
    assert history.state == (a,) and not history.can_redo

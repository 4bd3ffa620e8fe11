"""tiles.geojson: a FeatureCollection in QuPath's own layout."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.core.analysis.results import TILE_DONE, AnalysisResult
from chaoyang_desktop.export.geojson_tiles import tiles_feature_collection, write_tiles_geojson
from tests.export.helpers import CLASS_COLORS, CLASS_NAMES, QC_TILE, build_result, tile_index


def _rgb(hex_color: str) -> list[int]:
    return [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]


def test_structure_and_geometry(result: AnalysisResult) -> None:
    fc = tiles_feature_collection(result)
    assert fc["type"] == "FeatureCollection"
    done = np.flatnonzero(result.status == TILE_DONE)
    assert len(fc["features"]) == len(done)
    rects = result.rects()
    for feature, i in zip(fc["features"], done):
        assert feature["type"] == "Feature"
        assert uuid.UUID(feature["id"]).version == 5
        geom = feature["geometry"]
        assert geom["type"] == "Polygon"
        (ring,) = geom["coordinates"]
        assert len(ring) == 5 and ring[0] == ring[-1]
        x, y, w, h = rects[i].tolist()
        assert ring == [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
        assert all(type(v) is int for pt in ring for v in pt)


def test_properties_follow_qupath(result: AnalysisResult) -> None:
    fc = tiles_feature_collection(result)
    done = np.flatnonzero(result.status == TILE_DONE)
    for feature, i in zip(fc["features"], done):
        props = feature["properties"]
        assert props["objectType"] == "tile"
        assert props["isLocked"] is False
        k = int(np.argmax(result.probs[i]))
        assert props["classification"] == {"name": CLASS_NAMES[k], "color": _rgb(CLASS_COLORS[k])}
        m = props["measurements"]
        assert list(m) == [f"prob_{n}" for n in CLASS_NAMES] + ["confidence", "entropy", "margin"]
        assert m["margin"] == pytest.approx(float(np.diff(np.sort(result.probs[i])[-2:])[0]), abs=1e-6)
        np.testing.assert_allclose([m[f"prob_{n}"] for n in CLASS_NAMES], result.probs[i], atol=5e-7)
        assert abs(m["confidence"] - float(result.probs[i].max())) <= 5e-7
        assert all(isinstance(v, float) for v in m.values())


def test_ids_are_unique_and_reproducible(result: AnalysisResult) -> None:
    ids = [f["id"] for f in tiles_feature_collection(result)["features"]]
    assert len(set(ids)) == len(ids)
    assert ids == [f["id"] for f in tiles_feature_collection(build_result(seed=5))["features"]]
    other = build_result()
    other.provenance = dataclasses.replace(other.provenance, slide_fingerprint="sha256:ffff")
    assert set(ids).isdisjoint(f["id"] for f in tiles_feature_collection(other)["features"])


def test_file_round_trips(result: AnalysisResult, tmp_path: Path) -> None:
    path = tmp_path / "tiles.geojson"
    write_tiles_geojson(result, path)
    assert json.loads(path.read_text(encoding="utf-8")) == tiles_feature_collection(result)
    assert list(tmp_path.iterdir()) == [path]


def test_no_done_tiles_gives_an_empty_collection(tmp_path: Path) -> None:
    result = build_result(pending=100)
    assert result.n_done == 0
    write_tiles_geojson(result, tmp_path / "t.geojson")
    assert json.loads((tmp_path / "t.geojson").read_text()) == {"type": "FeatureCollection", "features": []}


def test_quality_control_tiles_are_ignore_class_with_reasons() -> None:
    result = build_result(with_qc=True)
    features = tiles_feature_collection(result)["features"]
    ignored = [f for f in features if f["properties"]["classification"]["name"] == "Ignore*"]
    assert len(ignored) == 1
    props = ignored[0]["properties"]
    assert props["qc"] == "pen;blur" and props["measurements"] == {}
    x, y, w, h = (int(v) for v in result.rects()[tile_index(result, *QC_TILE)])
    assert ignored[0]["geometry"]["coordinates"][0][0] == [x, y]
    assert all("qc" not in f["properties"] for f in features if f is not ignored[0])

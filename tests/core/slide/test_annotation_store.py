"""Annotations drawn on a slide are kept per slide content, as QuPath GeoJSON, without file names."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.core.slide.annotation_store import AnnotationStore
from chaoyang_desktop.core.slide.annotations import Annotation, PathClass

FINGERPRINT = "0123456789abcdef0123456789abcdef"


def test_annotations_round_trip_in_order(tmp_path: Path) -> None:
    store = AnnotationStore(tmp_path)
    a = Annotation.rectangle(0, 0, 100, 50, name="Margin", path_class=PathClass("Tumor", (200, 0, 0)))
    b = Annotation.freehand([(10, 10), (60, 20), (30, 70)])
    assert store.load(FINGERPRINT) == []
    store.save(FINGERPRINT, [a, b])
    back = store.load(FINGERPRINT)
    assert [(x.uid, x.name, x.path_class, x.shape) for x in back] == [
        (a.uid, "Margin", PathClass("Tumor", (200, 0, 0)), "rectangle"),
        (b.uid, "", None, "freehand"),
    ]
    np.testing.assert_array_equal(back[1].vertices(), [[10, 10], [60, 20], [30, 70]])
    assert store.load("fedcba9876543210") == []  # another slide has its own
    # One QuPath FeatureCollection per slide, named by the fingerprint only.
    assert [p.name for p in tmp_path.iterdir()] == [f"{FINGERPRINT}.geojson"]
    doc = json.loads((tmp_path / f"{FINGERPRINT}.geojson").read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and [f["id"] for f in doc["features"]] == [a.uid, b.uid]


def test_saving_none_leaves_an_empty_collection(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = AnnotationStore(tmp_path)
    store.save(FINGERPRINT, [Annotation.rectangle(0, 0, 1, 1)])
    with caplog.at_level(logging.WARNING):
        store.save(FINGERPRINT, [])
        assert store.load(FINGERPRINT) == []
    assert not caplog.records  # all deleted is a valid state, not a damaged file


def test_a_damaged_file_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = AnnotationStore(tmp_path)
    (tmp_path / f"{FINGERPRINT}.geojson").write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert store.load(FINGERPRINT) == []
    assert "unreadable annotations file" in caplog.text
    (tmp_path / f"{FINGERPRINT}.geojson").write_text('{"type": "Point", "coordinates": [1, 2]}', encoding="utf-8")
    assert store.load(FINGERPRINT) == []


def test_a_bad_key_is_refused(tmp_path: Path) -> None:
    store = AnnotationStore(tmp_path)
    for key in ("../escape", "a/b", ""):
        with pytest.raises(ValueError):
            store.load(key)
        with pytest.raises(ValueError):
            store.save(key, [])


def test_a_failed_save_is_only_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING):
        AnnotationStore(blocker / "annotations").save(FINGERPRINT, [Annotation.rectangle(0, 0, 1, 1)])
    assert "this session only" in caplog.text


def test_default_root_is_in_the_user_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOYANG_DATA_DIR", str(tmp_path / "data"))
    store = AnnotationStore()
    assert store.root == tmp_path / "data" / "annotations"
    store.save(FINGERPRINT, [Annotation.rectangle(0, 0, 1, 1)])
    assert (tmp_path / "data" / "annotations" / f"{FINGERPRINT}.geojson").is_file()

"""Regions drawn on a slide are kept per slide content, without file names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.core.slide.region_store import RegionStore
from chaoyang_desktop.core.slide.roi import Roi


def test_regions_round_trip_in_order(tmp_path: Path) -> None:
    store = RegionStore(tmp_path)
    a = Roi.from_polygon_points(np.array([[0, 0], [100, 0], [100, 50], [0, 50]], dtype=float))
    b = Roi.from_polygon_points(np.array([[10, 10], [60, 20], [30, 70]], dtype=float))
    assert store.load("abc123") == []
    store.save("abc123", [a, b])
    back = store.load("abc123")
    assert [r.digest() for r in back] == [a.digest(), b.digest()]  # same polygons, same order
    assert store.load("def456") == []  # another slide has its own
    assert [p.name for p in tmp_path.iterdir()] == ["abc123.json"]  # no file names stored


def test_a_damaged_file_is_ignored_and_a_bad_key_refused(tmp_path: Path) -> None:
    store = RegionStore(tmp_path)
    (tmp_path / "abc123.json").write_text("{not json")
    assert store.load("abc123") == []
    with pytest.raises(ValueError):
        store.load("../escape")

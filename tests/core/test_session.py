"""The Qt-free slide session: per-slide state, annotations with undo, regions kept across sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoyang_desktop.core.slide.annotation_store import AnnotationStore
from chaoyang_desktop.core.slide.annotations import Annotation
from chaoyang_desktop.core.slide.region_store import RegionStore
from chaoyang_desktop.core.slide.roi import Roi
from chaoyang_desktop.core.session import CHANGED_ANNOTATIONS, CHANGED_SELECTION, SlideSession
from chaoyang_desktop.core.slide.reader import open_slide


@pytest.fixture
def cmu_slide_path(test_data: Path) -> Path:
    return test_data / "slides" / "CMU-1-Small-Region.svs"


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, object]:
    return {"regions": RegionStore(tmp_path / "regions"), "annotations": AnnotationStore(tmp_path / "annotations")}


def test_annotations_edits_are_undone_saved_and_reloaded(stores, cmu_slide_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = SlideSession(str(cmu_slide_path), open_slide(cmu_slide_path), **stores)
    heard: list[str] = []
    session.listeners.append(heard.append)
    a = Annotation.rectangle(100, 100, 300, 200, name="A")
    b = Annotation.polygon([[400, 400], [600, 400], [500, 700]], name="B")
    session.edit(lambda h: h.add(a))
    session.edit(lambda h: h.add(b))
    session.select([b.uid, "unknown", a.uid])
    assert session.selected == (a.uid, b.uid)  # annotation order, unknown uid ignored
    session.edit(lambda h: h.remove([b.uid], "Delete"))
    assert session.selected == (a.uid,)  # a deleted annotation is no longer selected
    assert heard == [CHANGED_ANNOTATIONS, CHANGED_ANNOTATIONS, CHANGED_SELECTION, CHANGED_ANNOTATIONS]
    assert session.undo() == "Delete" and [x.uid for x in session.annotation_list()] == [a.uid, b.uid]
    session.close()
    # A new session of the same slide (same fingerprint) gets the last state back, without history.
    again = SlideSession(str(cmu_slide_path), open_slide(cmu_slide_path), **stores)
    assert [x.uid for x in again.annotation_list()] == [a.uid, b.uid]
    assert not again.annotations.can_undo and again.selected == ()
    again.close()


def test_selection_region_is_the_union_of_the_selected(stores, cmu_slide_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = SlideSession(str(cmu_slide_path), open_slide(cmu_slide_path), **stores)
    a = Annotation.rectangle(100, 100, 300, 200, name="A")
    b = Annotation.rectangle(1000, 1000, 1100, 1400, name="B")
    session.edit(lambda h: h.apply((a, b), "Add"))
    assert session.selection_region() is None
    session.select([a.uid, b.uid])
    region = session.selection_region()
    assert region is not None and region.source == "A + B"
    assert region.area_l0() == pytest.approx(200 * 100 + 100 * 400)
    assert region.bounds() == (100.0, 100.0, 1100.0, 1400.0)
    session.close()


def test_regions_are_remembered_once_and_found_by_digest(stores, cmu_slide_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = SlideSession(str(cmu_slide_path), open_slide(cmu_slide_path), **stores)
    roi = Roi.from_polygon_points([[10, 10], [500, 800]])
    session.remember_region(roi)
    session.remember_region(Roi.from_polygon_points([[10, 10], [500, 800]]))  # the same region again
    assert len(session.regions) == 1
    assert session.region_by_digest(roi.digest()) is roi
    assert session.region_by_digest("0" * 16) is None and session.region_by_digest(None) is None
    session.close()
    again = SlideSession(str(cmu_slide_path), open_slide(cmu_slide_path), **stores)
    assert [r.digest() for r in again.regions] == [roi.digest()]
    again.close()


def test_compositions_need_an_analysis(stores, cmu_slide_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = SlideSession(str(cmu_slide_path), open_slide(cmu_slide_path), **stores)
    session.edit(lambda h: h.add(Annotation.rectangle(100, 100, 300, 200)))
    assert session.result is None and session.compositions() == []
    session.close()


def test_an_unanalysed_target_goes_when_it_is_no_longer_selected(stores, cmu_slide_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = SlideSession(str(cmu_slide_path), open_slide(cmu_slide_path), **stores)
    a = Annotation.rectangle(100, 100, 300, 200, name="A")
    session.edit(lambda h: h.add(a))
    session.select([a.uid])
    session.roi = session.selection_region()
    assert not session.drop_unanalysed_target()  # still the selection
    session.select([])
    assert session.drop_unanalysed_target() and session.roi is None
    # An analysed region stays the target (its analysis is shown) whatever the selection.
    roi = Roi.from_polygon_points([[10, 10], [500, 800]])
    session.remember_region(roi)
    session.roi = roi
    assert not session.drop_unanalysed_target() and session.roi is roi
    session.close()

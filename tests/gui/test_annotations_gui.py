"""Annotations in the viewer: drawn with the tools, edited, undone, saved per slide, GeoJSON in and out, analysed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog

from chaoyang_desktop.core.analysis.results import TILE_DONE

RECT = ((800.0, 1000.0), (1900.0, 2200.0))


def open_slide_in(qtbot, window, path: Path) -> None:  # type: ignore[no-untyped-def]
    assert window.open_paths([str(path)])
    qtbot.waitUntil(window.slide_view.is_idle, timeout=20000)


def screen(view, l0_x: float, l0_y: float) -> QPoint:  # type: ignore[no-untyped-def]
    x, y = view.state.l0_to_screen(l0_x, l0_y)
    return QPoint(round(x), round(y))


def drag(qtbot, view, a: QPoint, b: QPoint, steps: int = 6) -> None:  # type: ignore[no-untyped-def]
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
    for i in range(1, steps + 1):
        qtbot.mouseMove(view, QPoint(a.x() + (b.x() - a.x()) * i // steps, a.y() + (b.y() - a.y()) * i // steps))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=b)


def analyse(qtbot, window, fresh: bool = False) -> str:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.analysis_finished, timeout=30000) as blocker:
        window.analyze(confirm=False) if not fresh else window.run_analysis(fresh=True)
    return str(blocker.args[0])


def test_each_tool_draws_its_shape_where_the_mouse_went(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    view, ctl = window.slide_view, window.annotation_ctl
    per_px = view.state.l0_per_screen_px
    (x0, y0), (x1, y1) = RECT
    a, b = screen(view, x0, y0), screen(view, x1, y1)
    for act, shape in ((ctl.act_rect, "rectangle"), (ctl.act_ellipse, "ellipse")):
        act.trigger()
        assert view.mode == shape
        drag(qtbot, view, a, b)
        assert view.mode == "pan" and not act.isChecked()
        ann = window.session.annotation_list()[-1]
        assert ann.shape == shape
        bx0, by0, bx1, by1 = ann.bounds()
        for got, want in ((bx0, x0), (by0, y0), (bx1, x1), (by1, y1)):
            assert abs(got - want) <= 2 * per_px  # a screen pixel or two, in level-0 pixels
    rect, ellipse = window.session.annotation_list()
    assert rect.area_l0() == pytest.approx((x1 - x0) * (y1 - y0), rel=0.01)
    assert ellipse.area_l0() == pytest.approx(math.pi * (x1 - x0) * (y1 - y0) / 4, rel=0.01)
    # Polygon: three clicks and Enter.
    ctl.act_poly.trigger()
    corners = ((500.0, 500.0), (1800.0, 700.0), (1500.0, 2500.0))
    for p in corners:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=screen(view, *p))
    qtbot.keyClick(view, Qt.Key.Key_Return)
    poly = window.session.annotation_list()[-1]
    assert poly.shape == "polygon" and len(poly.vertices()) == 3
    assert np.abs(poly.vertices() - np.array(corners)).max() <= 2 * per_px
    # Freehand: the path the mouse followed while the button was down.
    ctl.act_freehand.trigger()
    centre, radius = np.array([1300.0, 1500.0]), 500.0
    path = [screen(view, *(centre + radius * np.array([math.cos(t), math.sin(t)])))
            for t in np.linspace(0, 2 * math.pi, 40, endpoint=False)]
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=path[0])
    for p in path[1:]:
        qtbot.mouseMove(view, p)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=path[-1])
    free = window.session.annotation_list()[-1]
    assert free.shape == "freehand" and len(free.vertices()) >= 20
    assert free.area_l0() == pytest.approx(math.pi * radius ** 2, rel=0.05)
    # The panel lists all four, the last one drawn selected.
    assert [r[0] for r in window.annotations_panel.row_texts()] == ["Rectangle 1", "Ellipse 2", "Polygon 3",
                                                                    "Freehand 4"]
    assert window.annotations_panel.selected_uids() == (free.uid,)
    # The minimap outlines them too, in their colours (magenta without a class).
    outlines = view.minimap.outlines()
    assert len(outlines) == 4 and all(c.name() == "#e63ce6" for _, c in outlines)


def test_select_move_edit_delete_with_undo_and_redo(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    view, ctl, s = window.slide_view, window.annotation_ctl, None
    window.set_roi_points(np.array(RECT))
    s = window.session
    ann = s.annotation_list()[0]
    # A click outside deselects; a click inside selects.
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=screen(view, 300, 300))
    assert s.selected == ()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=screen(view, 1300, 1500))
    assert s.selected == (ann.uid,)
    # Drag inside the selected annotation: it moves by the drag.
    per_px = view.state.l0_per_screen_px
    drag(qtbot, view, screen(view, 1300, 1500), screen(view, 1500, 1600))
    moved = s.annotation_list()[0]
    assert moved.uid == ann.uid
    np.testing.assert_allclose(np.array(moved.bounds()) - np.array(ann.bounds()), [200, 100, 200, 100],
                               atol=2 * per_px)
    # Drag the top-left corner handle: the rectangle is resized, its opposite corner stays.
    x0, y0, x1, y1 = moved.bounds()
    drag(qtbot, view, screen(view, x0, y0), screen(view, x0 - 200, y0 - 150))
    edited = s.annotation_list()[0]
    assert edited.shape == "rectangle" and edited.uid == ann.uid
    np.testing.assert_allclose(edited.bounds(), (x0 - 200, y0 - 150, x1, y1), atol=2 * per_px)
    # A polygon's corner handle moves that vertex alone.
    window.set_roi_points(np.array([[300.0, 300.0], [700.0, 320.0], [500.0, 800.0]]))
    poly = s.annotation_list()[1]
    drag(qtbot, view, screen(view, 700, 320), screen(view, 760, 380))
    bent = s.annotation_list()[1]
    np.testing.assert_allclose(bent.vertices()[1], (760, 380), atol=2 * per_px)
    np.testing.assert_array_equal(np.delete(bent.vertices(), 1, axis=0), np.delete(poly.vertices(), 1, axis=0))
    ctl.undo()
    ctl.undo()  # the vertex move and the polygon
    s.select([ann.uid])
    # Rename and classify in the panel.
    panel = window.annotations_panel
    item = panel.tree.topLevelItem(0)
    item.setText(0, "Tumour front")
    idx = panel.class_box.findText("Tumor")
    panel.class_box.setCurrentIndex(idx)
    panel.class_box.activated.emit(idx)
    named = s.annotation_list()[0]
    assert named.name == "Tumour front" and named.path_class is not None and named.path_class.name == "Tumor"
    assert panel.row_texts()[0][:2] == ("Tumour front", "Tumor")
    # Delete, then undo every step back to the first drawing, and redo them.
    ctl.delete_selected()
    assert s.annotation_list() == ()
    assert ctl.act_undo.text() == "&Undo Delete Annotation"
    states = []
    while ctl.act_undo.isEnabled():
        ctl.act_undo.trigger()
        states.append(s.annotation_list())
    assert len(states) == 6  # delete, class, rename, resize, move, draw
    assert states[-1] == () and states[-2][0].bounds() == ann.bounds()
    for _ in range(6):
        ctl.act_redo.trigger()
    assert s.annotation_list() == ()
    # Redo has its usual keys besides the platform's.
    keys = {k.toString() for k in ctl.act_redo.shortcuts()}
    assert {"Ctrl+Y", "Ctrl+Shift+Z"} <= keys and len(keys) == len(ctl.act_redo.shortcuts())


def test_annotations_are_saved_per_slide_and_never_shown_on_another(qtbot, make_window, cmu_slide,
                                                                     test_data) -> None:  # type: ignore[no-untyped-def]
    first = make_window()
    open_slide_in(qtbot, first, cmu_slide)
    first.set_roi_points(np.array([[500.0, 500.0], [1800.0, 700.0], [1500.0, 2500.0]]))
    drawn = first.session.annotation_list()
    # Another slide shows none of them, and its panel is empty.
    open_slide_in(qtbot, first, test_data / "slides" / "CMU-1-Small-Region_generic-pyramid.tiff")
    assert first.session.annotation_list() == () and first.annotations_panel.uids() == []
    assert first.slide_view.tools.annotations == ()
    first.close()
    # Reopened in a new window: the same annotations, coordinates unchanged.
    second = make_window()
    open_slide_in(qtbot, second, cmu_slide)
    again = second.session.annotation_list()
    assert [a.uid for a in again] == [a.uid for a in drawn]
    np.testing.assert_array_equal(again[0].vertices(), drawn[0].vertices())
    assert second.annotations_panel.uids() == [drawn[0].uid]


def test_geojson_export_and_import_keep_geometry_and_class(qtbot, make_window, cmu_slide, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    open_slide_in(qtbot, window, cmu_slide)
    # A QuPath export: a classified polygon with a hole, written by hand as QuPath writes it.
    qupath = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": "7f9c1b0e-3a52-4c8e-9d61-2b7f0a4e5c11",
        "geometry": {"type": "Polygon", "coordinates": [
            [[600.5, 800.25], [1700, 800.25], [1700, 2100], [600.5, 2100], [600.5, 800.25]],
            [[900, 1200], [1200, 1200], [1200, 1500], [900, 1200]]]},
        "properties": {"objectType": "annotation", "name": "Gland",
                       "classification": {"name": "Tumor", "color": [200, 0, 0]}}}]}
    src = tmp_path / "from-qupath.geojson"
    src.write_text(json.dumps(qupath), encoding="utf-8")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(src), "")))
    window.annotation_ctl.act_import.trigger()
    (ann,) = window.session.annotation_list()
    assert ann.uid == "7f9c1b0e-3a52-4c8e-9d61-2b7f0a4e5c11" and ann.name == "Gland"
    assert ann.path_class is not None and (ann.path_class.name, ann.path_class.color) == ("Tumor", (200, 0, 0))
    assert ann.area_l0() == pytest.approx((1700 - 600.5) * (2100 - 800.25) - 300 * 300 / 2)
    # Export, and the written coordinates are QuPath's, exactly.
    out = tmp_path / "out.geojson"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    window.annotation_ctl.act_export.trigger()
    feature = json.loads(out.read_text(encoding="utf-8"))["features"][0]
    assert feature["geometry"]["coordinates"] == qupath["features"][0]["geometry"]["coordinates"]
    assert feature["properties"]["classification"] == {"name": "Tumor", "color": [200, 0, 0]}
    assert feature["properties"]["objectType"] == "annotation" and feature["id"] == ann.uid
    # Dropping the exported file on the open slide adds a copy (a uid of its own), undoable at once.
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(out))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: len(window.session.annotation_list()) == 2, timeout=5000)
    first, copy = window.session.annotation_list()
    assert copy.uid != first.uid and copy.name == "Gland"
    np.testing.assert_array_equal(copy.polygons[0].holes[0], first.polygons[0].holes[0])
    assert window.slide_path == str(cmu_slide)  # the drop did not try to open the file as a slide


def test_a_broken_geojson_file_is_one_line_and_changes_nothing(qtbot, window, cmu_slide,
                                                              tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    assert not window.annotation_ctl.import_file(str(bad))
    assert window.last_error is not None and "\n" not in window.last_error and "bad.geojson" in window.last_error
    assert window.session.annotation_list() == ()


def test_analyze_runs_on_the_selected_annotations(qtbot, make_window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    window = make_window(analysis_overrides={"tile_um": 64.0})  # small tiles, so each box holds several
    open_slide_in(qtbot, window, cmu_slide)
    ctl, s = window.annotation_ctl, None
    window.set_roi_points(np.array([[600.0, 900.0], [1100.0, 1400.0]]))
    window.set_roi_points(np.array([[1500.0, 1700.0], [2000.0, 2300.0]]))
    s = window.session
    a, b = s.annotation_list()
    ctl.select([a.uid, b.uid])
    assert analyse(qtbot, window) == "done"
    r = window.result
    assert r.provenance.roi_digest == s.selection_region().digest()
    # Every classified tile touches one of the two boxes.
    rects = r.rects()[r.status == TILE_DONE]
    assert len(rects) > 0

    def touches(box: tuple[float, float, float, float]) -> np.ndarray:
        x0, y0, x1, y1 = box
        return ((rects[:, 0] < x1) & (rects[:, 0] + rects[:, 2] > x0)
                & (rects[:, 1] < y1) & (rects[:, 1] + rects[:, 3] > y0))

    assert np.all(touches(a.bounds()) | touches(b.bounds()))
    assert np.any(touches(a.bounds())) and np.any(touches(b.bounds()))


def test_summary_gives_each_annotations_composition(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    assert analyse(qtbot, window) == "done"  # the whole slide
    window.set_roi_points(np.array(RECT))
    window.annotation_ctl.select(())
    comps = window.summary_panel.compositions
    assert len(comps) == 1 and comps[0].name == "Rectangle 1"
    r = window.result
    assert r.provenance.roi_digest is None  # drawing did not replace the whole slide's analysis
    # Reference: done tiles whose centre lies in the rectangle, counted here with numpy.
    rects = r.rects()
    cx, cy = rects[:, 0] + rects[:, 2] / 2, rects[:, 1] + rects[:, 3] / 2
    (x0, y0), (x1, y1) = RECT
    inside = (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1) & (r.status == TILE_DONE)
    assert comps[0].tiles == int(inside.sum()) > 0
    labels = r.labels()[inside]
    for k, c in enumerate(comps[0].classes):
        assert c["tiles"] == int(np.count_nonzero(labels == k))
    assert "Rectangle 1" in window.summary_panel.annotations.text()


def test_ruler_measures_in_micrometres(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    view = window.slide_view
    window.annotation_ctl.act_ruler.trigger()
    a, b = screen(view, 500, 500), screen(view, 1700, 1400)
    with qtbot.waitSignal(view.tools.measured, timeout=2000) as blocker:
        drag(qtbot, view, a, b)
    la = view.state.screen_to_l0(a.x(), a.y())
    lb = view.state.screen_to_l0(b.x(), b.y())
    length = math.hypot(lb[0] - la[0], lb[1] - la[1])
    assert blocker.args[0] == pytest.approx(length, abs=1e-6)
    um = length * window.slide.mpp
    assert window.statusBar().currentMessage() == f"Distance: {um:.1f} \u00b5m"
    assert window.session.annotation_list() == ()  # a measurement is not an annotation
    assert window.annotation_ctl.act_clear_ruler.isEnabled()
    window.annotation_ctl.act_clear_ruler.trigger()
    assert view.tools.ruler is None and not window.annotation_ctl.act_clear_ruler.isEnabled()


def test_report_lists_each_annotations_composition(qtbot, window, cmu_slide, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from pypdf import PdfReader

    open_slide_in(qtbot, window, cmu_slide)
    assert analyse(qtbot, window) == "done"
    window.set_roi_points(np.array(RECT))
    window.session.edit(lambda h: h.replace(h.state[0].renamed("Crypt field"), "Rename"))
    out = tmp_path / "report.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    with qtbot.waitSignal(window.exporter.export_finished, timeout=30000) as blocker:
        window.exporter.act_report.trigger()
    assert blocker.args[1] == "done"
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(str(out)).pages)
    assert "Annotations" in text and "Crypt field" in text


def test_a_deleted_or_deselected_drawing_is_no_longer_the_target(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    window.set_roi_points(np.array(RECT))
    assert window.roi is not None and window.slide_view.roi_outlines()
    window.annotation_ctl.delete_selected()
    assert window.roi is None and not window.slide_view.roi_outlines()  # no outline left to analyse
    window.annotation_ctl.undo()  # back, but not selected: Analyze would run on the whole slide
    assert window.session.selected == () and window.roi is None
    window.annotation_ctl.select([window.session.annotation_list()[0].uid])
    window._target_selection()  # noqa: SLF001 (what Analyze does first)
    assert window.roi is not None and window.roi.digest() == window.session.selection_region().digest()


def test_the_class_box_shows_the_selected_annotations_class(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.core.slide.annotations import PathClass

    open_slide_in(qtbot, window, cmu_slide)
    window.set_roi_points(np.array(RECT))
    window.set_roi_points(np.array([[300.0, 300.0], [700.0, 700.0]]))
    s, box = window.session, window.annotations_panel.class_box
    a, b = s.annotation_list()
    s.edit(lambda h: h.replace(a.classified(PathClass("Stroma", (150, 200, 150))), "Set Class"))
    window.annotation_ctl.select([a.uid])
    assert box.currentText() == "Stroma"
    window.annotation_ctl.select([b.uid])
    assert box.currentText() == "(no class)"
    window.annotation_ctl.select([a.uid, b.uid])  # mixed
    assert box.currentText() == "(no class)"


def test_drawn_names_keep_one_running_number(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    ctl, s = window.annotation_ctl, window.session
    ctl.draw("rectangle", [[100, 100], [300, 300]])
    ctl.draw("ellipse", [[400, 100], [600, 300]])
    ctl.draw("freehand", [[700, 100], [900, 150], [800, 300]])
    ctl.select([s.annotation_list()[1].uid])
    ctl.delete_selected()
    ctl.draw("rectangle", [[100, 400], [300, 600]])
    assert [a.name for a in s.annotation_list()] == ["Rectangle 1", "Freehand 3", "Rectangle 4"]

"""Analysing a real slide in the main window: progress, live heatmap, summary, hover, cancel, close, cache."""

from __future__ import annotations

import dataclasses
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from chaoyang_desktop.core.analysis.results import TILE_DONE, TILE_QC
from tests.gui.helpers import analysed_cmu_window


def analyse(qtbot, window, fresh: bool = False, timeout: int = 30000) -> str:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.analysis_finished, timeout=timeout) as blocker:
        window.run_analysis(fresh=fresh)
    return str(blocker.args[0])


def open_another_during_a_run(qtbot, make_window, cmu_slide: Path, test_data: Path,  # type: ignore[no-untyped-def]
                              tile_um: float):
    """A window analysing CMU-1 (asking before a run is stopped) told to open the JPEG: its question."""
    window = make_window(analysis_overrides={"tile_um": tile_um})
    window.settings.set("ui/ask_before_stopping_a_run", True)
    open_slide_in(qtbot, window, cmu_slide)
    with qtbot.waitSignal(window.host.batch_ready, timeout=30000):
        window.run_analysis(fresh=True)
    other = str(test_data / "images" / "CMU-1-Small-Region_full.jpg")
    assert window.open_paths([other])
    return window, other, window.leave_run_dialog


def open_slide_in(qtbot, window, path: Path) -> None:  # type: ignore[no-untyped-def]
    assert window.open_paths([str(path)])
    qtbot.waitUntil(window.slide_view.is_idle, timeout=20000)


@pytest.fixture(scope="module")
def engine(test_data: Path, tiny_model: Path):  # type: ignore[no-untyped-def]
    """The CMU analysis through the core alone (no GUI, no cache): the reference numbers."""
    from chaoyang_desktop.core.analysis.run import analyze_slide
    from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
    from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings

    clf = Classifier.load(str(tiny_model), EngineSettings(device="cpu", batch_size=8))
    return analyze_slide(test_data / "slides" / "CMU-1-Small-Region.svs", clf, AnalysisSettings(), cache=None).result


@pytest.fixture(scope="module")
def analysed(qapp, tiny_model: Path, test_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One window that has analysed CMU-1-Small-Region; tests only look at it (or undo what they change)."""
    batches: list[object] = []
    before: list[object] = []

    def watch(window) -> None:  # type: ignore[no-untyped-def]
        window.host.batch_ready.connect(lambda jid, u: batches.append(u))
        before.append(window.slide_view.grab().toImage())

    with analysed_cmu_window(tiny_model, test_data, tmp_path_factory.mktemp("home"), (1200, 800), watch) as (window, status):
        window.test_batches = batches  # type: ignore[attr-defined]
        window.test_before = before[0]  # type: ignore[attr-defined]
        window.test_status = status  # type: ignore[attr-defined]
        yield window


def test_analyse_real_slide_paints_heatmap_and_summary(analysed, engine) -> None:  # type: ignore[no-untyped-def]
    window = analysed
    assert window.test_status == "done"
    r = window.result
    assert r is not None and r.complete and r.n_done == r.n_tiles > 0
    assert window.test_batches, "progress arrives batch by batch"
    # The summary panel shows the engine's numbers for the same slide, model and settings.
    assert window.summary_panel.summary == engine.summary()
    np.testing.assert_allclose(r.probs, engine.probs, atol=1e-5)
    table = window.summary_panel.table
    assert table.rowCount() == 4 and table.item(0, 0).text() == "Normal"
    assert table.item(0, 1).text() == f"{engine.summary()['classes'][0]['tiles']:,}"
    assert window.slide_view.grab().toImage() != window.test_before  # the heatmap is painted
    assert not window.progress.isVisible()


def test_hover_values_equal_the_engine(qtbot, analysed, engine) -> None:  # type: ignore[no-untyped-def]
    window = analysed
    hm, _ = engine.heatmap()
    rects = engine.rects()
    view = window.slide_view
    for i in range(engine.n_tiles):
        x, y, w, h = rects[i]
        info = view.hover_at(x + w / 2, y + h / 2)
        assert info is not None
        probs, n, r, c = info
        np.testing.assert_allclose(probs, engine.probs[i], atol=1e-5)
        np.testing.assert_allclose(probs, hm[r, c], atol=1e-5)
        text = view.hover_text(x + w / 2, y + h / 2)
        top = int(np.argmax(engine.probs[i]))
        assert f"{100 * engine.probs[i][top]:.1f}%" in text and engine.class_names[top] in text
    # A real mouse move over a tile reports that tile's probabilities.
    x, y, w, h = rects[0]
    sx, sy = view.state.l0_to_screen(x + w / 2, y + h / 2)
    qtbot.mouseMove(view, QPoint(5, 5))
    with qtbot.waitSignal(view.hover_changed, timeout=2000) as blocker:
        qtbot.mouseMove(view, QPoint(int(sx), int(sy)))
    np.testing.assert_allclose(blocker.args[0][0], engine.probs[0], atol=1e-5)


def test_overlay_controls_change_the_painted_pixels(analysed) -> None:  # type: ignore[no-untyped-def]
    window = analysed
    r = window.result
    view = window.slide_view
    best = int(np.argmax(r.confidences()))
    x, y, w, h = r.rects()[best]
    sx, sy = (int(v) for v in view.state.l0_to_screen(x + w / 2, y + h / 2))

    def pixel() -> tuple[int, int, int]:
        c = view.grab().toImage().pixelColor(sx, sy)
        return c.red(), c.green(), c.blue()

    panel = window.overlay_panel
    original = panel.style
    try:
        shown = pixel()
        panel.show_check.setChecked(False)
        bare = pixel()
        assert bare != shown
        panel.show_check.setChecked(True)
        assert pixel() == shown
        panel.opacity_slider.setValue(90)
        stronger = pixel()
        assert stronger != shown
        top = int(r.labels()[best])
        panel.set_class_color(top, "#000000")
        assert pixel() != stronger
        assert window.settings.class_color(r.class_names[top], "#ffffff") == "#000000"  # persisted
        panel.set_class_visible(top, False)
        assert pixel() == bare
        panel.set_class_visible(top, True)
        panel.min_conf_slider.setValue(100)
        assert pixel() == bare
        panel.min_conf_slider.setValue(0)
        panel.mode_combo.setCurrentIndex(1)
        panel.class_combo.setCurrentIndex(top)
        assert pixel() != bare
        assert panel.color_bar.isVisible()
        window.act_heatmap.trigger()  # H hides the overlay
        assert pixel() == bare and not panel.show_check.isChecked()
    finally:
        panel.set_style(original)


def test_click_shows_the_tile_in_the_inspector(qtbot, analysed) -> None:  # type: ignore[no-untyped-def]
    window = analysed
    r = window.result
    view = window.slide_view
    x, y, w, h = r.rects()[2]
    sx, sy = view.state.l0_to_screen(x + w / 2, y + h / 2)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(int(sx), int(sy)))
    info = window.inspector.info
    assert info is not None and info.index == 2
    np.testing.assert_allclose(info.probs, r.probs[2], atol=1e-6)
    assert window.inspector.chart.values == pytest.approx(tuple(float(p) for p in r.probs[2]))
    qtbot.waitUntil(lambda: window.inspector.picture.image is not None, timeout=10000)
    img = window.inspector.picture.image
    assert (img.width(), img.height()) == (w, h)  # full resolution (level 0)
    expected = window.slide.read_region(int(x), int(y), 0, int(w), int(h))
    for px, py in ((0, 0), (w // 2, h // 3), (w - 1, h - 1)):
        c = img.pixelColor(int(px), int(py))
        assert (c.red(), c.green(), c.blue()) == tuple(int(v) for v in expected[int(py), int(px)])


def test_worker_reports_device_and_model(analysed) -> None:  # type: ignore[no-untyped-def]
    window = analysed
    assert window.device_label.description.startswith(("CPU", "GPU"))
    assert window.profile is not None and window.profile.class_names == window.overlay_panel.style.class_names


def test_cancel_mid_run_keeps_the_partial_result(qtbot, make_window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    window = make_window(analysis_overrides={"tile_um": 128.0})
    window.settings.set("engine/batch_size", 2)
    open_slide_in(qtbot, window, cmu_slide)
    with qtbot.waitSignal(window.host.batch_ready, timeout=30000):
        window.run_analysis(fresh=True)
    assert window.progress.isVisible() and window.act_cancel.isEnabled()
    t0 = time.perf_counter()
    with qtbot.waitSignal(window.analysis_finished, timeout=30000) as blocker:
        window.progress.cancel_button.click()
    assert blocker.args == ["cancelled"]
    assert time.perf_counter() - t0 < 10
    r = window.result
    assert 0 < r.n_done < r.n_tiles
    assert window.summary_panel.summary["tiles_done"] == r.n_done
    assert "cancelled" in window.statusBar().currentMessage()
    # Analyze resumes: only the missing tiles run, and the result is complete.
    assert analyse(qtbot, window, timeout=60000) == "done"
    assert window.result.complete


def test_tiles_in_view_are_analysed_first(qtbot, make_window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    window = make_window(analysis_overrides={"tile_um": 64.0})
    window.settings.set("engine/batch_size", 2)
    window.settings.set("analysis/workers", 1)
    open_slide_in(qtbot, window, cmu_slide)
    view = window.slide_view
    view.state.set_scale(1.0)
    view.state.center_on(1300, 2600)  # the bottom of the slide
    with qtbot.waitSignal(window.host.batch_ready, timeout=30000):
        window.run_analysis(fresh=True)

    def visible_done() -> bool:
        r = window.result
        x0, y0, x1, y1 = view.state.visible_l0_rect()
        rects = r.rects()
        vis = (rects[:, 0] < x1) & (rects[:, 0] + rects[:, 2] > x0) & (rects[:, 1] < y1) & (rects[:, 1] + rects[:, 3] > y0)
        # Done, or left out by quality control as it was read: either way the model is past it.
        return bool(vis.any()) and bool(np.all(np.isin(r.status[vis], (TILE_DONE, TILE_QC))))

    qtbot.waitUntil(visible_done, timeout=60000)
    r = window.result
    # Without priorities the bottom of the slide would come last.
    assert r.n_done < 0.6 * r.n_tiles
    with qtbot.waitSignal(window.analysis_finished, timeout=30000):
        window.cancel_job()


def test_closing_mid_run_cancels_cleanly(qtbot, make_window, cmu_slide, slow_model) -> None:  # type: ignore[no-untyped-def]
    # A slow GPU-less machine: the rest of the run would take minutes.
    window = make_window(analysis_overrides={"tile_um": 64.0})
    open_slide_in(qtbot, window, cmu_slide)
    with qtbot.waitSignal(window.host.batch_ready, timeout=30000):
        window.run_analysis(fresh=True)
    assert window.result.n_done < window.result.n_tiles / 4
    t0 = time.perf_counter()
    window.close()
    # Closing cancels the run: at most the batch being classified finishes.
    assert time.perf_counter() - t0 < 2.0
    assert window.host.thread.isFinished()
    assert not window.isVisible()
    QApplication.processEvents()  # late signals of the cancelled job are harmless


def test_cached_analysis_is_shown_at_once(qtbot, make_window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    first = make_window()
    open_slide_in(qtbot, first, cmu_slide)
    assert analyse(qtbot, first) == "done"
    expected = first.result.probs.copy()
    first.close()
    second = make_window()
    with qtbot.waitSignal(second.heatmap_refreshed, timeout=20000):
        second.open_paths([str(cmu_slide)])
    r = second.result
    assert r is not None and r.complete and np.count_nonzero(r.status == TILE_DONE) == r.n_tiles
    np.testing.assert_allclose(r.probs, expected)
    assert "stored analysis" in second.statusBar().currentMessage().lower()
    # Analyze then returns from the cache without running the model again.
    batches: list[object] = []
    second.host.batch_ready.connect(lambda *a: batches.append(a))
    assert analyse(qtbot, second) == "done"
    assert not batches


def test_region_of_interest_limits_the_analysis(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    view = window.slide_view
    window.act_rect.trigger()
    assert view.mode == "rectangle"
    a = view.state.l0_to_screen(800, 1000)
    b = view.state.l0_to_screen(1900, 2200)
    with qtbot.waitSignal(view.tools.shape_drawn, timeout=2000):
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(int(a[0]), int(a[1])))
        qtbot.mouseMove(view, QPoint(int(b[0]), int(b[1])))
        qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(int(b[0]), int(b[1])))
    assert window.roi is not None and view.mode == "pan" and not window.act_rect.isChecked()
    assert analyse(qtbot, window) == "done"
    rects = window.result.rects()
    assert len(rects) > 0
    assert np.all(rects[:, 0] + rects[:, 2] > 790) and np.all(rects[:, 0] < 1910)
    assert np.all(rects[:, 1] + rects[:, 3] > 990) and np.all(rects[:, 1] < 2210)
    assert window.result.provenance.roi_digest is not None


def test_polygon_region_is_drawn_with_clicks(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    view = window.slide_view
    window.act_poly.trigger()
    pts = [view.state.l0_to_screen(*p) for p in ((500, 500), (1800, 700), (1500, 2500))]
    for x, y in pts:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(int(x), int(y)))
    with qtbot.waitSignal(view.tools.shape_drawn, timeout=2000) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert blocker.args[0].shape == "polygon" and blocker.args[0].l0_points.shape == (3, 2)
    assert window.roi is not None and window.act_clear_roi.isEnabled()
    window.clear_roi()
    assert window.roi is None


def test_preview_shows_tissue_mask_and_tile_grid_before_running(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    before = window.slide_view.grab().toImage()
    window.act_preview.setChecked(True)
    qtbot.waitUntil(lambda: window.slide_view.preview is not None, timeout=20000)
    pv = window.slide_view.preview
    assert len(pv.tile_rects) > 0 and pv.tissue_rgba[..., 3].any()
    assert window.slide_view.grab().toImage() != before
    assert window.result is None  # nothing ran
    # With confirmation on, Analyze shows the preview and a banner before anything runs.
    window.act_preview.setChecked(False)
    window.analyze(confirm=True)
    assert window.banner.isVisible()
    qtbot.waitUntil(lambda: "tissue tiles" in window.banner.label.text(), timeout=20000)
    with qtbot.waitSignal(window.analysis_finished, timeout=30000):
        window.banner.run_button.click()
    assert not window.banner.isVisible() and window.result.complete


def test_slide_without_pixel_size_asks_for_one(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.synthetic import tissue_image, write_pyramid_tiff

    path = write_pyramid_tiff(tmp_path / "nompp.tiff", tissue_image(1280, 1536, [(100, 100, 1200, 1000)]), mpp=None,
                              levels=1)
    open_slide_in(qtbot, window, path)
    assert window.slide.mpp is None
    window.analyze(confirm=False)
    assert window.last_error and "pixel size" in window.last_error
    window.properties_panel.mpp_spin.setValue(0.5)
    window.properties_panel.apply_button.click()
    assert window.slide.mpp == 0.5 and window.slide.mpp_source == "override"
    with qtbot.waitSignal(window.analysis_finished, timeout=30000) as blocker:
        window.analyze(confirm=False)
    assert blocker.args == ["done"]


def test_errors_are_dialogs_with_the_engine_message(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide at all" * 10)
    assert not window.open_paths([str(bad)])
    boxes = [w for w in window.findChildren(object) if getattr(w, "objectName", lambda: "")() == "error_dialog"]
    assert boxes and "broken.svs" in boxes[0].text()
    boxes[0].close()


def test_a_stale_jobs_signals_are_dropped(qtbot, make_window, cmu_slide,
                                          monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    window = make_window(analysis_overrides={"tile_um": 128.0})
    open_slide_in(qtbot, window, cmu_slide)
    with qtbot.waitSignal(window.host.batch_ready, timeout=30000):
        window.run_analysis(fresh=True)
    old = window.host.current.id
    seen: list[int] = []
    window.host.batch_ready.connect(lambda jid, u: seen.append(jid))
    settings = window.settings  # not the window: a lambda holding it would hold it in a cycle
    monkeypatch.setattr(window, "analysis_request",
                        lambda: dataclasses.replace(settings.analysis_request(None), tile_um=512.0))
    assert analyse(qtbot, window, fresh=True) == "done"
    assert old not in seen
    assert window.result.provenance.tile_um == pytest.approx(512.0, rel=0.01)


def test_a_slide_outside_the_domain_asks_before_it_is_analysed(qtbot, window, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, test_data / "slides" / "Hamamatsu-test3-DAPI-2-387.ndpi")
    assert analyse(qtbot, window, fresh=True) == "out-of-domain"
    box = window.out_of_domain_dialog
    assert box is not None and box.isVisible()
    assert "fluorescence" in box.informativeText()
    assert window.result is None or window.result.n_done == 0  # nothing was classified
    anyway = next(b for b in box.buttons() if b.text() == "Analyze Anyway")
    with qtbot.waitSignal(window.analysis_finished, timeout=60000) as blocker:
        anyway.click()
    assert blocker.args[0] == "done"
    r = window.result
    # Analysed anyway: quality control then leaves its dark, blue-on-black tiles out, and says so.
    assert r is not None and r.complete and r.n_qc > 0 and r.n_done + r.n_qc == r.n_tiles
    assert "QC left out" in window.summary_panel.quality.text()
    assert "Quality control left" in window.summary_panel.quality.toolTip()
    assert r.provenance.domain_check is not None and r.provenance.domain_check["status"] == "analysed anyway"
    panel = window.summary_panel
    assert panel.warning.isVisibleTo(panel) and "fluorescence" in panel.warning.text()


# ----- state bugs found under Xvfb: each slide shows only its own results ----------------------------------
def test_a_slide_never_analysed_shows_no_heatmap_of_the_last_one(qtbot, window, cmu_slide, test_data: Path,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    import shutil

    open_slide_in(qtbot, window, cmu_slide)
    assert analyse(qtbot, window) == "done"
    assert window.slide_view.minimap._overlay is not None  # noqa: SLF001
    other = tmp_path / "other.tiff"  # never analysed: a new file name and content fingerprint
    shutil.copy(test_data / "slides" / "CMU-1-Small-Region_generic-pyramid.tiff", other)
    open_slide_in(qtbot, window, other)
    assert window.result is None and window.slide_view.heatmap is None
    assert window.slide_view.minimap._overlay is None  # noqa: SLF001
    assert "No analysis yet" in window.summary_panel.totals.text()


def test_opening_another_slide_during_a_run_asks_first(qtbot, make_window, cmu_slide, test_data: Path,  # type: ignore[no-untyped-def]
                                                       slow_model) -> None:
    window, other, box = open_another_during_a_run(qtbot, make_window, cmu_slide, test_data, 64.0)
    assert box is not None and box.isVisible() and "CMU-1-Small-Region.svs" in box.text()
    # "Keep Analysing": nothing changes, the run goes on.
    next(b for b in box.buttons() if b.text() == "Keep Analysing").click()
    assert window.slide_path == str(cmu_slide) and window.host.is_busy()
    # Asked again, "Stop and Open": the run stops with its tiles kept, and the other file opens.
    assert window.open_paths([other])
    box = window.leave_run_dialog
    done_before = window.result.n_done
    next(b for b in box.buttons() if b.text() == "Stop and Open").click()
    assert window.slide_path == other and window.result is None
    assert done_before > 0


def test_clearing_a_region_brings_back_the_whole_slide_analysis(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    assert analyse(qtbot, window) == "done"
    whole = window.result.n_tiles
    window.set_roi_points(np.array([[800, 1000], [1900, 1000], [1900, 2200], [800, 2200]], dtype=float))
    assert analyse(qtbot, window) == "done"
    assert window.result.provenance.roi_digest is not None and window.result.n_tiles < whole
    # Clear Region: the region-only heatmap goes (it would look like a partial analysis) and the
    # whole slide's stored analysis comes back, not a mix.
    with qtbot.waitSignal(window.heatmap_refreshed, timeout=20000):
        window.act_clear_roi.trigger()
    r = window.result
    assert r is not None and r.provenance.roi_digest is None and r.n_tiles == whole and r.complete


def test_clearing_a_region_without_a_whole_slide_analysis_clears_the_heatmap(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    open_slide_in(qtbot, window, cmu_slide)
    window.set_roi_points(np.array([[800, 1000], [1900, 1000], [1900, 2200], [800, 2200]], dtype=float))
    assert analyse(qtbot, window) == "done"
    window.act_clear_roi.trigger()
    assert window.result is None and window.slide_view.heatmap is None
    assert window.slide_view.minimap._overlay is None  # noqa: SLF001
    assert "No analysis yet" in window.summary_panel.totals.text()
    qtbot.wait(500)  # the cache lookup finds nothing for the whole slide: still no heatmap
    assert window.result is None


def test_quitting_during_a_run_asks_first(qtbot, make_window, cmu_slide, slow_model) -> None:  # type: ignore[no-untyped-def]
    window = make_window(analysis_overrides={"tile_um": 64.0})
    window.settings.set("ui/ask_before_stopping_a_run", True)
    open_slide_in(qtbot, window, cmu_slide)
    with qtbot.waitSignal(window.host.batch_ready, timeout=30000):
        window.run_analysis(fresh=True)
    window.close()
    box = window.leave_run_dialog
    assert box is not None and box.isVisible() and window.isVisible()  # not closed yet
    next(b for b in box.buttons() if b.text() == "Keep Analysing").click()
    assert window.isVisible() and window.host.is_busy()
    window.close()
    t0 = time.perf_counter()
    next(b for b in window.leave_run_dialog.buttons() if b.text() == "Stop and Quit").click()
    assert not window.isVisible() and time.perf_counter() - t0 < 2.0
    assert window.host.thread.isFinished() and window.result is not None and window.result.n_done > 0


def test_nothing_to_analyse_is_a_notice_with_its_reason(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.synthetic import tissue_image, write_pyramid_tiff

    glass = write_pyramid_tiff(tmp_path / "glass.tiff", tissue_image(1536, 2048, []), mpp=0.5, levels=2)
    open_slide_in(qtbot, window, glass)
    assert analyse(qtbot, window, fresh=True) == "no-tiles"
    boxes = [w for w in window.findChildren(object) if getattr(w, "objectName", lambda: "")() == "error_dialog"]
    assert boxes and boxes[-1].windowTitle() == "Nothing to analyse"
    assert "No tile has at least 25% tissue" in boxes[-1].text()
    assert not window.host.is_busy()
    assert window.result is None or window.result.n_done == 0
    boxes[-1].close()


def test_the_whole_slide_and_each_region_keep_their_own_analysis(qtbot, window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    panel = window.analyses_panel
    open_slide_in(qtbot, window, cmu_slide)
    assert panel.entry_texts() == ["Whole slide"]
    assert analyse(qtbot, window) == "done"
    whole = window.result.probs.copy()
    window.set_roi_points(np.array([[800, 1000], [1900, 1000], [1900, 2200], [800, 2200]], dtype=float))
    assert analyse(qtbot, window) == "done"
    region = window.result
    assert region.provenance.roi_digest is not None
    assert [t.split(" (")[0] for t in panel.entry_texts()] == ["Whole slide", "Polygon 1"]
    # Back to the whole slide: its own analysis, from the cache, with no model run.
    batches: list[object] = []
    window.host.batch_ready.connect(lambda jid, u: batches.append(u))
    with qtbot.waitSignal(window.heatmap_refreshed, timeout=20000):
        panel.choose(0)
    assert window.roi is None and window.result.provenance.roi_digest is None
    np.testing.assert_array_equal(window.result.probs, whole)
    # And the region again: its outline and its analysis.
    with qtbot.waitSignal(window.heatmap_refreshed, timeout=20000):
        panel.choose(1)
    assert window.roi is not None and window.result.provenance.roi_digest == region.provenance.roi_digest
    np.testing.assert_array_equal(window.result.probs, region.probs)
    assert not batches


def test_regions_are_reopened_with_their_slide(qtbot, make_window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    first = make_window()
    open_slide_in(qtbot, first, cmu_slide)
    first.set_roi_points(np.array([[800, 1000], [1900, 1000], [1900, 2200], [800, 2200]], dtype=float))
    assert analyse(qtbot, first) == "done"
    region = first.result
    first.close()
    second = make_window()
    open_slide_in(qtbot, second, cmu_slide)
    assert [t.split(" (")[0] for t in second.analyses_panel.entry_texts()] == ["Whole slide", "Polygon 1"]
    with qtbot.waitSignal(second.heatmap_refreshed, timeout=20000):
        second.analyses_panel.choose(1)
    assert second.result.provenance.roi_digest == region.provenance.roi_digest
    np.testing.assert_array_equal(second.result.probs, region.probs)


def test_a_run_can_go_on_in_the_background(qtbot, make_window, cmu_slide, test_data: Path,
                                           slow_model) -> None:  # type: ignore[no-untyped-def]
    window, other, box = open_another_during_a_run(qtbot, make_window, cmu_slide, test_data, 128.0)
    next(b for b in box.buttons() if b.text() == "Open, Keep Running in Background").click()
    # The other slide is on screen with nothing of the first one's analysis...
    assert window.slide_path == other and window.result is None and window.slide_view.heatmap is None
    (job,) = [h for h in window.host.running_jobs() if h.background]
    assert job.job.path == str(cmu_slide)
    # Its progress shows, named, while nothing else runs.
    qtbot.waitUntil(lambda: window.progress.isVisibleTo(window), timeout=20000)
    assert "(background)" in window.progress.title.text()
    shown: list[object] = []
    held = weakref.ref(window)  # a lambda holding the window itself would hold it in a cycle
    window.heatmap_refreshed.connect(lambda: shown.append(held().result))
    # ...while the first one finishes in the background, and says so.
    qtbot.waitUntil(lambda: not window.host.running_jobs(), timeout=90000)
    assert job.outcome == "done"
    assert "in the background finished" in window.statusBar().currentMessage()
    assert all(r is None or r.provenance.slide_path == other for r in shown)
    # Reopened, the first slide shows its finished analysis, from the store.
    open_slide_in(qtbot, window, cmu_slide)
    qtbot.waitUntil(lambda: window.result is not None, timeout=20000)
    assert window.result.complete and window.result.provenance.slide_path == str(cmu_slide)

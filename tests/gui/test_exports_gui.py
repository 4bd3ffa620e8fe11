"""File > Export from an analysed slide: PDF report, heatmap images, GeoJSON, CSV; errors and cancel."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from chaoyang_desktop.core.analysis.results import TILE_DONE, TILE_PENDING, TileState
from chaoyang_desktop.gui.analysis_worker import EXPORT_CSV, EXPORT_GEOJSON, EXPORT_HEATMAP, EXPORT_REPORT
from tests.gui.helpers import analysed_cmu_window, wait_until


@pytest.fixture(scope="module")
def analysed(qapp, tiny_model: Path, test_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One window that has analysed CMU-1-Small-Region with the tiny model (isolated settings and caches)."""

    def note_actions(window) -> None:  # type: ignore[no-untyped-def]
        window.test_enabled_before = [a.isEnabled() for a in window.exporter.actions]

    with analysed_cmu_window(tiny_model, test_data, tmp_path_factory.mktemp("home"), (1100, 750), note_actions) as (window, status):
        assert status == "done"
        wait_until(window.slide_view.is_idle)
        yield window


@pytest.fixture
def save_as(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Answer the next save dialogs with the given path; records what each dialog proposed."""
    asked: list[tuple[str, str]] = []
    answer: list[str] = []

    def fake(parent, title, start, filters, *a, **k):  # type: ignore[no-untyped-def]
        asked.append((title, start))
        return answer[0], filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake))

    def set_answer(path: Path) -> list[tuple[str, str]]:
        answer[:] = [str(path)]
        return asked

    return set_answer


def run_export(qtbot, window, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    action = {EXPORT_REPORT: window.exporter.act_report, EXPORT_HEATMAP: window.exporter.act_heatmap,
              EXPORT_GEOJSON: window.exporter.act_geojson, EXPORT_CSV: window.exporter.act_csv}[kind]
    assert action.isEnabled()
    with qtbot.waitSignal(window.exporter.export_finished, timeout=30000) as blocker:
        action.trigger()
    return list(blocker.args)


def test_exports_are_enabled_only_with_a_result(analysed) -> None:  # type: ignore[no-untyped-def]
    assert analysed.test_enabled_before == [False] * 4  # the slide open, not yet analysed
    assert all(a.isEnabled() for a in analysed.exporter.actions)
    names = [a.text() for a in analysed.menuBar().actions()[0].menu().actions()]
    for label in ("Export &Report (PDF)\u2026", "Export &Heatmap Image\u2026", "Export Tiles as &GeoJSON\u2026",
                  "Export Tiles as &CSV\u2026"):
        assert label in names


def test_export_pdf_report(qtbot, analysed, save_as, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pypdf import PdfReader

    out = tmp_path / "cmu_report.pdf"
    asked = save_as(out)
    assert run_export(qtbot, analysed, EXPORT_REPORT) == [EXPORT_REPORT, "done", str(out)]
    # The dialog proposed <slide folder or Documents>/<stem>_report.pdf.
    assert Path(asked[-1][1]).name == "CMU-1-Small-Region_report.pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(str(out)).pages)
    assert "CMU-1-Small-Region.svs" in text
    assert "research use only" in text.lower()
    assert str(out) in analysed.statusBar().currentMessage()
    assert analysed.exporter.open_folder_button.isVisible()
    assert not analysed.progress.isVisible()


def test_export_geojson_and_csv(qtbot, analysed, save_as, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = analysed.result
    save_as(tmp_path / "tiles")  # no suffix typed: the format's is added
    assert run_export(qtbot, analysed, EXPORT_GEOJSON)[1] == "done"
    fc = json.loads((tmp_path / "tiles.geojson").read_text())
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == r.n_done > 0
    save_as(tmp_path / "tiles.csv")
    assert run_export(qtbot, analysed, EXPORT_CSV)[1] == "done"
    with open(tmp_path / "tiles.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == r.n_done
    assert {row["label"] for row in rows} <= set(r.class_names)


def test_export_partial_result(qtbot, analysed, save_as, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = analysed.result
    probs, status = r.probs.copy(), r.status.copy()
    try:
        r.status[r.n_tiles // 2:] = TILE_PENDING
        r.probs[r.n_tiles // 2:] = np.nan
        analysed._update_actions()
        assert analysed.exporter.act_csv.isEnabled()  # partial results are exported too
        save_as(tmp_path / "partial.csv")
        assert run_export(qtbot, analysed, EXPORT_CSV)[1] == "done"
        with open(tmp_path / "partial.csv", newline="") as fh:
            assert len(list(csv.DictReader(fh))) == int(np.count_nonzero(status[: r.n_tiles // 2] == TILE_DONE))
        assert "partial analysis" in analysed.statusBar().currentMessage()
    finally:
        r.probs[...] = probs
        r.status[...] = status


def test_export_heatmap_whole_slide_and_current_view(qtbot, analysed, save_as, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exporter = analysed.exporter
    try:
        exporter.heatmap_choice = (True, 1024, True)  # whole slide, longest side 1024 px, legend
        save_as(tmp_path / "whole.png")
        assert run_export(qtbot, analysed, EXPORT_HEATMAP)[1] == "done"
        img = QImage(str(tmp_path / "whole.png"))
        w, h = analysed.slide.dimensions  # portrait: the legend goes on the right
        slide_h = 1024
        slide_w = round(w * 1024 / h)
        assert img.height() == slide_h and img.width() > slide_w
        # The current view, as painted, with the legend: chosen in the dialog.
        exporter.heatmap_choice = None
        save_as(tmp_path / "view.png")
        with qtbot.waitSignal(exporter.export_finished, timeout=30000) as blocker:
            exporter.act_heatmap.trigger()
            dialog = exporter.heatmap_dialog
            assert dialog.isVisible() and dialog.whole.isChecked() and dialog.legend.isChecked()
            assert dialog.side.maximum() == max(w, h)  # no upscaling past full resolution
            dialog.current.setChecked(True)
            assert not dialog.side.isEnabled()
            dialog.accept()
        assert blocker.args[1] == "done"
        view = QImage(str(tmp_path / "view.png"))
        sv = analysed.slide_view
        assert view.height() == sv.height() and view.width() > sv.width()
        assert view.copy(0, 0, sv.width(), sv.height()) == sv.grab().toImage().convertToFormat(view.format())
    finally:
        exporter.heatmap_choice = None


def test_export_into_a_missing_folder_shows_the_error(qtbot, analysed, save_as, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr("chaoyang_desktop.gui.main_window.show_error",
                        lambda parent, title, message, details="": shown.append((title, message)))
    missing = tmp_path / "no-such-folder"
    for kind, name in ((EXPORT_REPORT, "r.pdf"), (EXPORT_GEOJSON, "t.geojson")):
        save_as(missing / name)
        assert run_export(qtbot, analysed, kind)[:2] == [kind, "failed"]
        assert shown and "does not exist" in shown[-1][1] and str(missing) in shown[-1][1]
    analysed.exporter.heatmap_choice = (False, 0, True)
    try:
        save_as(missing / "v.png")
        assert run_export(qtbot, analysed, EXPORT_HEATMAP)[:2] == [EXPORT_HEATMAP, "failed"]
    finally:
        analysed.exporter.heatmap_choice = None
    assert len(shown) == 3
    assert not missing.exists() and list(tmp_path.iterdir()) == []
    assert all(a.isEnabled() for a in analysed.exporter.actions)


def test_cancelled_report_leaves_no_file(qtbot, analysed, save_as, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r.pdf"
    with qtbot.waitSignal(analysed.exporter.export_finished, timeout=30000) as blocker:
        assert analysed.exporter.export(EXPORT_REPORT, str(out))
        assert analysed.act_cancel.isEnabled()
        analysed.cancel_job()
    assert blocker.args[:2] == [EXPORT_REPORT, "cancelled"]
    assert list(tmp_path.iterdir()) == []
    assert not analysed.act_cancel.isEnabled() and analysed.exporter.act_report.isEnabled()


def test_report_cancelled_between_tile_reads_writes_nothing(analysed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Synchronously on this thread: cancel after the first gallery tile is read."""
    import threading

    from chaoyang_desktop.gui.analysis_worker import AnalysisWorker, ExportJob
    from chaoyang_desktop.gui.main_window import NOMINAL_MPP

    r = analysed.result
    job = ExportJob(kind=EXPORT_REPORT, path=str(tmp_path / "r.pdf"), plan=analysed.plan, tiles=TileState.of(r),
                    slide_path=analysed.slide_path, mpp=None, assumed_mpp=NOMINAL_MPP)
    worker = AnalysisWorker()
    cancel = threading.Event()
    progress: list[tuple[int, int]] = []
    ended: list[tuple[int, str]] = []

    def on_progress(job_id: int, done: int, total: int, elapsed: float) -> None:
        progress.append((done, total))
        if done >= 1:
            cancel.set()

    worker.progress_changed.connect(on_progress)
    worker.job_finished.connect(lambda job_id, status, payload: ended.append((job_id, status)))
    worker.job_failed.connect(lambda job_id, message, details: ended.append((job_id, message)))
    try:
        worker.run_job(7, job, cancel)
    finally:
        worker.close_slide()
    assert ended == [(7, "cancelled")]
    assert progress[0][0] == 0 and progress[-1][0] == 1 and progress[-1][1] > 1
    assert list(tmp_path.iterdir()) == []


def test_report_outlines_the_region_the_analysis_used(qtbot, window, cmu_slide: Path, save_as,
                                                      tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pypdf import PdfReader

    assert window.open_paths([str(cmu_slide)])
    qtbot.waitUntil(window.slide_view.is_idle, timeout=20000)
    window.set_roi_points(np.array([[600.0, 900.0], [1500.0, 1900.0]]))  # a rectangle over tissue
    with qtbot.waitSignal(window.analysis_finished, timeout=30000):
        window.run_analysis()
    assert window.result.provenance.roi_digest == window.roi.digest()
    # A new region drawn but not analysed yet: the report outlines the region the result used.
    window.set_roi_points(np.array([[100.0, 100.0], [500.0, 400.0]]))
    out = tmp_path / "roi.pdf"
    save_as(out)
    assert run_export(qtbot, window, EXPORT_REPORT)[1] == "done"
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(str(out)).pages)
    assert "no longer available" not in text and "outline is not drawn" not in text

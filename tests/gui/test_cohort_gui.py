"""The cohort window: a folder of slides analysed in one run, its table, sorting, filters, export, Ray events."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from chaoyang_desktop.core.analysis.cohort import (
    SLIDE_DONE,
    SLIDE_FAILED,
    SLIDE_NEW,
    SLIDE_OUT_OF_DOMAIN,
    SLIDE_QUEUED,
    SLIDE_RUNNING,
    SlideReport,
)
from chaoyang_desktop.gui.cohort_model import COL_STATUS, COL_TILES, VALUE_ROLE
from chaoyang_desktop.gui.cohort_runner import RUN_RAY, STATE_IDLE, STATE_PAUSED, STATE_RUNNING
from tests.synthetic import tissue_image, write_pyramid_tiff

GOOD = ("a.tiff", "b.tiff")  # H&E-like
DAPI = "c-dapi.ndpi"  # a fluorescence scan
BROKEN = "d-broken.svs"  # not a slide
#: The slide list's order, which the cohort keeps: whole-slide formats first, then large images.
ORDER = [DAPI, BROKEN, *GOOD]


@pytest.fixture
def cohort_folder(tmp_path: Path, test_data: Path) -> Path:
    folder = tmp_path / "cohort"
    folder.mkdir()
    write_pyramid_tiff(folder / GOOD[0], tissue_image(1024, 1536, [(0, 0, 1536, 1024)], seed=1), mpp=0.5, levels=2)
    write_pyramid_tiff(folder / GOOD[1], tissue_image(1024, 1536, [(0, 0, 800, 1024)], seed=2), mpp=0.5, levels=2)
    shutil.copy(test_data / "slides" / "Hamamatsu-test3-DAPI-2-387.ndpi", folder / DAPI)
    (folder / BROKEN).write_bytes(b"not a slide at all " * 64)
    return folder


@pytest.fixture
def reference(tiny_model: Path):  # type: ignore[no-untyped-def]
    """A slide's result through the core alone (no GUI, no cache), with the app's default settings."""
    from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings
    from chaoyang_desktop.core.analysis.run import analyze_slide
    from chaoyang_desktop.core.model.inference import Classifier, EngineSettings

    clf = Classifier.load(str(tiny_model), EngineSettings(device="cpu", batch_size=8))
    return lambda path: analyze_slide(path, clf, AnalysisSettings(), cache=None).result


def open_cohort(qtbot, window, folder: Path):  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.slide_opened, timeout=20000):
        assert window.open_paths([str(folder)])
    cohort = window.cohort_window
    assert cohort is not None and cohort.isVisible()
    return cohort


def run_all(qtbot, cohort, timeout: int = 60000) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(cohort.runner.finished, timeout=timeout):
        assert cohort.analyze_all()


def rows_by_name(cohort):  # type: ignore[no-untyped-def]
    return {Path(r.path).name: r for r in cohort.runner.model.rows}


def statuses(cohort) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {name: r.status for name, r in rows_by_name(cohort).items()}


def cell(cohort, name: str, column: int, role=Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
    m = cohort.runner.model
    return m.index(m.row_of(str(Path(cohort.runner.model.folder) / name)), column).data(role)


# ----- the run ---------------------------------------------------------------------------------------------------
def test_analyze_all_runs_every_slide_and_a_bad_one_does_not_stop_it(qtbot, window, cohort_folder: Path,  # type: ignore[no-untyped-def]
                                                                     reference) -> None:
    cohort = open_cohort(qtbot, window, cohort_folder)
    assert cohort.windowTitle() == "Cohort \u2014 cohort"
    assert list(statuses(cohort).values()) == [SLIDE_NEW] * 4
    assert window.act_cohort.isEnabled() and window.slides_dock.isVisible()  # the slide list stays
    assert "Tissue threshold: 0.25" in cohort.settings_label.text()

    run_all(qtbot, cohort)
    assert statuses(cohort) == {GOOD[0]: SLIDE_DONE, GOOD[1]: SLIDE_DONE, DAPI: SLIDE_OUT_OF_DOMAIN,
                                BROKEN: SLIDE_FAILED}
    model = cohort.runner.model
    # The class columns follow the model's classes; each cell is the slide's share of the summary.
    names = [c["name"] for c in reference(cohort_folder / GOOD[0]).summary()["classes"]]
    assert list(model.class_names) == names
    for name in GOOD:
        expected = reference(cohort_folder / name).summary()
        for c in expected["classes"]:
            assert cell(cohort, name, model.class_column(c["name"]), VALUE_ROLE) == c["percent"]
            assert cell(cohort, name, model.class_column(c["name"])) == f"{c['percent']:.1f}"
        assert cell(cohort, name, COL_TILES, VALUE_ROLE) == expected["tiles_total"]
        assert not rows_by_name(cohort)[name].report.from_cache
    # The failures say why, in the row and in full in its tooltip.
    dapi_reason = cell(cohort, DAPI, model.col_reason)
    assert "fluorescence" in dapi_reason and "Analyze Anyway" in cell(cohort, DAPI, model.col_reason,
                                                                      Qt.ItemDataRole.ToolTipRole)
    assert "neither a whole-slide image" in cell(cohort, BROKEN, model.col_reason)
    assert cell(cohort, GOOD[0], model.col_reason) == ""
    assert cohort.pace_label.text().startswith("4 of 4 slides")
    assert cohort.progress_bar.value() == cohort.progress_bar.maximum()
    assert "Model: tiny" in cohort.settings_label.text() and "CPU" in cohort.settings_label.text()
    assert window.last_error is None  # failed slides are rows, not dialogs

    # Everything ended: Analyze All Again. Finished slides come from the results cache at once.
    assert cohort.analyze_button.text() == "Analyze All Again"
    run_all(qtbot, cohort)
    done = rows_by_name(cohort)
    assert all(done[n].report.from_cache and done[n].report.seconds == 0 for n in GOOD)
    assert cell(cohort, GOOD[0], COL_STATUS) == "done (cached)"
    assert cell(cohort, GOOD[0], model.col_time) == "cached"
    assert statuses(cohort)[BROKEN] == SLIDE_FAILED  # tried again, still broken


def test_sort_filter_export_and_open_a_finished_slide(qtbot, window, cohort_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cohort = open_cohort(qtbot, window, cohort_folder)
    # Before any run, the export lists every slide as not analysed.
    before = tmp_path / "before"
    before.mkdir()
    assert cohort.export_to(before)
    assert [r["status"] for r in csv.DictReader((before / "cohort.csv").open(encoding="utf-8"))] == \
        ["not analysed"] * 4
    run_all(qtbot, cohort)
    model, table = cohort.runner.model, cohort.table
    names = [Path(p).name for p in cohort.shown_paths()]
    assert names == ORDER == [Path(p).name for p in window.slide_list.paths()]  # until a header is clicked

    # Sorting: statuses in their order (done, ..., out of domain, failed), numbers as numbers.
    table.sortByColumn(COL_STATUS, Qt.SortOrder.DescendingOrder)
    assert [Path(p).name for p in cohort.shown_paths()][:2] == [BROKEN, DAPI]
    assert sorted(Path(p).name for p in cohort.shown_paths()[2:]) == list(GOOD)
    table.sortByColumn(COL_TILES, Qt.SortOrder.DescendingOrder)
    assert [Path(p).name for p in cohort.shown_paths()][:2] == list(GOOD)  # 6 tiles, then 4
    first_class = model.class_names[0]
    col = model.class_column(first_class)
    table.sortByColumn(col, Qt.SortOrder.AscendingOrder)
    values = [cohort.proxy.index(i, col).data(VALUE_ROLE) for i in range(cohort.proxy.rowCount())]
    numbers = [v for v in values if v is not None]
    assert values[:2] == [None, None] and numbers == sorted(numbers)

    # Filters: by status, and by a class's share of the tissue.
    cohort.status_combo.setCurrentIndex(cohort.status_combo.findData(SLIDE_DONE))
    assert sorted(Path(p).name for p in cohort.shown_paths()) == list(GOOD)
    cohort.status_combo.setCurrentIndex(cohort.status_combo.findData(SLIDE_OUT_OF_DOMAIN))
    assert [Path(p).name for p in cohort.shown_paths()] == [DAPI]
    assert "1 of 4 shown" in cohort.count_label.text()
    cohort.status_combo.setCurrentIndex(0)
    share = {Path(r.path).name: r.percent(first_class) for r in model.rows if r.status == SLIDE_DONE}
    cut = max(share.values())
    cohort.class_combo.setCurrentIndex(cohort.class_combo.findData(first_class))
    cohort.percent_spin.setValue(cut)
    assert [Path(p).name for p in cohort.shown_paths()] == [n for n, v in share.items() if v >= round(cut, 1)]
    cohort.percent_spin.setValue(0.0)
    assert sorted(Path(p).name for p in cohort.shown_paths()) == list(GOOD)  # slides without numbers never pass
    cohort.class_combo.setCurrentIndex(0)
    assert cohort.proxy.rowCount() == 4

    # Export: cohort.csv as write_cohort_csv writes it, and the one-page PDF.
    out = tmp_path / "export"
    out.mkdir()
    written = cohort.export_to(out)
    assert [p.name for p in written] == ["cohort.csv", "cohort.pdf"]
    from chaoyang_desktop.export.cohort_csv import cohort_header

    with (out / "cohort.csv").open(encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = {Path(r[0]).name: dict(zip(header, r)) for r in reader}
    assert header == cohort_header(list(model.class_names))
    assert {n: r["status"] for n, r in rows.items()} == {GOOD[0]: "ok", GOOD[1]: "ok", DAPI: "out of domain",
                                                         BROKEN: "failed"}
    assert rows[GOOD[0]]["output"] == "" and "fluorescence" in rows[DAPI]["error"]
    a = rows_by_name(cohort)[GOOD[0]].report.summary
    assert float(rows[GOOD[0]][f"{first_class}_percent"]) == pytest.approx(a["classes"][0]["percent"], abs=1e-4)
    assert (out / "cohort.pdf").read_bytes()[:5] == b"%PDF-"
    # A folder that cannot be written: one line in a dialog, no traceback.
    assert cohort.export_to(tmp_path / "missing" / "folder") == []
    assert window.last_error and "does not exist" in window.last_error and "\n" not in window.last_error
    box = next(d for d in cohort.findChildren(QMessageBox) if d.objectName() == "error_dialog")
    assert box.isVisible() and box.parent() is cohort  # over the cohort window
    box.close()

    # Settings change after the run: opening a slide from the list looks its result up with the new
    # settings and finds none, but a double-click in the cohort looks it up with the cohort's.
    window.settings.set("analysis/tissue_threshold", 0.3)
    window._settings_applied()  # noqa: SLF001 (what OK in the Settings dialog calls)
    last, now = cohort.settings_label.text().split("\n")
    assert last.startswith("Last run:") and "Tissue threshold: 0.25" in last
    assert "every slide again" in now and "Tissue threshold: 0.3" in now
    b = str(cohort_folder / GOOD[1])
    with qtbot.waitSignal(window.slide_opened, timeout=20000):
        window.slide_list.slide_chosen.emit(b)
    qtbot.waitUntil(window.slide_view.is_idle, timeout=20000)
    qtbot.waitUntil(lambda: not window.host.is_busy(), timeout=20000)
    assert window.result is None
    cohort.status_combo.setCurrentIndex(cohort.status_combo.findData(SLIDE_DONE))
    table.sortByColumn(COL_TILES, Qt.SortOrder.AscendingOrder)
    assert cohort.path_at(0) == b  # 4 tiles
    rect = table.visualRect(cohort.proxy.index(0, 0))
    window.statusBar().clearMessage()
    with qtbot.waitSignal(window.heatmap_refreshed, timeout=20000):
        # Qt 6's mouseDClick sends the double-click alone; a view opens what the press went on.
        QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        QTest.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    r = window.result
    assert window.slide_path == b and r is not None and r.complete and window.heatmap.layer is not None
    assert r.summary() == rows_by_name(cohort)[GOOD[1]].report.summary
    assert r.provenance.tissue_threshold == 0.25
    assert window.statusBar().currentMessage().startswith("Showing the stored analysis")


# ----- pausing, cancelling, and the user's own work ------------------------------------------------------------
@pytest.fixture
def slow_cohort(qtbot, make_window, app_settings, cohort_folder: Path, slow_model):  # type: ignore[no-untyped-def]
    """A cohort window over the folder, its model slowed (0.2 s a batch of 2 tiles: 0.6 s for a.tiff)."""
    app_settings.set("engine/batch_size", 2)
    window = make_window()
    return window, open_cohort(qtbot, window, cohort_folder)


def wait_running(qtbot, cohort, name: str = GOOD[0]) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: rows_by_name(cohort)[name].status == SLIDE_RUNNING
                    and rows_by_name(cohort)[name].done > 0, timeout=30000)


def test_pause_resume_and_cancel(qtbot, slow_cohort) -> None:  # type: ignore[no-untyped-def]
    window, cohort = slow_cohort
    runner = cohort.runner
    assert cohort.analyze_all()
    wait_running(qtbot, cohort)
    # The progress column draws the running slide's share of tiles.
    row = rows_by_name(cohort)[GOOD[0]]
    assert 0 < row.fraction < 1 and cell(cohort, GOOD[0], 2).endswith("%")
    assert window.cohort_label.isVisible() and window.cohort_label.text().startswith("Cohort: 2 of 4 slides")

    with qtbot.waitSignal(runner.state_changed, timeout=20000, check_params_cb=lambda s: s == STATE_PAUSED):
        cohort.pause_button.click()
    assert cohort.pause_button.text() == "Resume" and not window.host.is_busy()
    assert statuses(cohort) == {DAPI: SLIDE_OUT_OF_DOMAIN, BROKEN: SLIDE_FAILED, GOOD[0]: SLIDE_QUEUED,
                                GOOD[1]: SLIDE_QUEUED}
    assert "paused" in cohort.pace_label.text()
    paused_elapsed = runner.clock.elapsed_s()
    qtbot.wait(300)
    assert runner.clock.elapsed_s() == paused_elapsed  # paused time is not counted

    with qtbot.waitSignal(runner.finished, timeout=60000):
        cohort.pause_button.click()  # Resume
    assert statuses(cohort)[GOOD[0]] == SLIDE_DONE and statuses(cohort)[GOOD[1]] == SLIDE_DONE

    # Other settings: every slide runs again. Cancel: the slides not ended go back to new.
    window.settings.set("analysis/tissue_threshold", 0.3)
    assert cohort.analyze_all()
    assert set(statuses(cohort).values()) == {SLIDE_QUEUED}
    wait_running(qtbot, cohort)
    with qtbot.waitSignal(runner.state_changed, timeout=20000, check_params_cb=lambda s: s == STATE_IDLE):
        cohort.cancel_button.click()
    assert statuses(cohort)[GOOD[0]] == statuses(cohort)[GOOD[1]] == SLIDE_NEW
    assert not window.host.is_busy() and not window.cohort_label.isVisible()
    assert cohort.analyze_button.isEnabled() and cohort.analyze_button.text() == "Analyze All"


def test_the_users_analysis_goes_first_and_the_cohort_slide_carries_on_after(qtbot, slow_cohort,  # type: ignore[no-untyped-def]
                                                                           cohort_folder: Path) -> None:
    window, cohort = slow_cohort
    ended: list[str] = []
    assert cohort.analyze_all()
    wait_running(qtbot, cohort)
    job = window.cohort._job  # noqa: SLF001
    assert job is not None and job.background and job.yields
    job.finished.connect(lambda status, _payload: ended.append(status))
    done_before = rows_by_name(cohort)[GOOD[0]].done
    # The user opens another slide and analyses it while the cohort's first slide runs: the
    # preview and the analysis go first, the cohort's slide steps aside.
    window.open_slide_file(str(cohort_folder / GOOD[1]))
    qtbot.waitUntil(lambda: ended == ["cancelled"], timeout=20000)
    assert statuses(cohort)[GOOD[0]] == SLIDE_QUEUED and cohort.runner.state == STATE_RUNNING
    qtbot.waitUntil(window.slide_view.is_idle, timeout=20000)
    with qtbot.waitSignal(window.analysis_finished, timeout=60000) as blocker:
        window.run_analysis(fresh=True)
    assert blocker.args == ["done"] and window.result.complete  # the user's run was not cancelled
    qtbot.waitUntil(lambda: cohort.runner.state == STATE_IDLE, timeout=60000)
    assert statuses(cohort)[GOOD[0]] == SLIDE_DONE and statuses(cohort)[GOOD[1]] == SLIDE_DONE
    a = rows_by_name(cohort)[GOOD[0]].report
    assert a.summary["tiles_done"] == a.summary["tiles_total"] > done_before  # resumed and finished
    # The user's analysis of b was stored: the cohort took it from the cache.
    assert rows_by_name(cohort)[GOOD[1]].report.from_cache


def test_quitting_while_the_cohort_runs_asks_first(qtbot, slow_cohort) -> None:  # type: ignore[no-untyped-def]
    window, cohort = slow_cohort
    window.settings.set("ui/ask_before_stopping_a_run", True)
    assert cohort.analyze_all()
    wait_running(qtbot, cohort)
    window.close()
    box = window.leave_run_dialog
    assert box is not None and box.isVisible() and window.isVisible()
    assert "cohort" in box.text() and "2 of 4 slides done" in box.text()  # the two bad ones ended
    t0 = time.perf_counter()
    next(b for b in box.buttons() if b.text() == "Stop and Quit").click()
    assert not window.isVisible() and not cohort.isVisible() and time.perf_counter() - t0 < 3.0
    assert window.host.thread.isFinished()


def test_a_missing_model_stops_the_queue_with_one_message(qtbot, make_window, cohort_folder: Path,  # type: ignore[no-untyped-def]
                                                          tmp_path: Path) -> None:
    window = make_window(model=str(tmp_path / "no-model-here"))
    cohort = open_cohort(qtbot, window, cohort_folder)
    with qtbot.waitSignal(cohort.runner.model_missing, timeout=30000):
        assert cohort.analyze_all()
    assert cohort.runner.state == STATE_IDLE and set(statuses(cohort).values()) == {SLIDE_NEW}
    dialogs = [d for d in window.findChildren(object) if type(d).__name__ == "ModelDialog"]
    assert len(dialogs) == 1 and window._pending_after_model == "cohort"  # noqa: SLF001
    dialogs[0].close()


# ----- Ray ---------------------------------------------------------------------------------------------------------
def test_ray_runs_update_the_rows(qtbot, window, cohort_folder: Path) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.core.cluster.events import ClusterReady, SlideDone, SlideStarted, WorkerLost

    calls: list[dict] = []  # type: ignore[type-arg]

    def fake_ray(slides, model, engine, settings, cluster, *, on_event, cancel=None, cache=None, fresh=False):  # type: ignore[no-untyped-def]
        calls.append({"slides": slides, "model": model, "engine": engine, "settings": settings, "cluster": cluster,
                      "cache": cache})
        on_event(ClusterReady("2 workers, 1 CPU each, on 1 node", 2))
        for s in slides:
            on_event(SlideStarted(s.index, 1, "worker 1 on node 10.0.0.3", 4242))
            if Path(s.path).name == GOOD[1]:
                on_event(WorkerLost(s.index, 1, "the node died"))
                on_event(SlideStarted(s.index, 2, "worker 2 on node 10.0.0.4", 4343))
            name = Path(s.path).name
            if name in GOOD:
                summary = {"tiles_total": 5, "tiles_done": 5, "tiles_failed": 0, "tiles_qc": 0,
                           "analysed_area_mm2": 1.0, "uncertainty": {}, "classes": [
                               {"name": "Tumour", "color": "#ff0000", "percent": 75.0, "area_mm2": 0.75},
                               {"name": "Stroma", "color": "#00ff00", "percent": 25.0, "area_mm2": 0.25}]}
                report = SlideReport(s.path, SLIDE_DONE, summary=summary, seconds=3.0, worker="worker 1",
                                     attempts=1 + (name == GOOD[1]))
            else:
                report = SlideReport(s.path, SLIDE_FAILED, "worker: cannot read it", worker="worker 1")
            on_event(SlideDone(s.index, report))

    cohort = open_cohort(qtbot, window, cohort_folder)
    window.cohort.ray.runner = fake_ray
    window.settings.set("cluster/ray_address", "10.0.0.1:6379")
    window.settings.set("cluster/cpus_per_worker", 3)
    cohort.run_on_combo.setCurrentIndex(cohort.run_on_combo.findData(RUN_RAY))
    run_all(qtbot, cohort)
    assert len(calls) == 1
    call = calls[0]
    assert [Path(s.path).name for s in call["slides"]] == ORDER
    assert call["cluster"].address == "10.0.0.1:6379" and call["cluster"].cpus_per_worker == 3
    assert call["model"] == window._model_request().spec and call["engine"].device == "cpu"  # noqa: SLF001
    assert call["settings"].tissue_threshold == 0.25 and call["cache"] is not None
    assert statuses(cohort) == {GOOD[0]: SLIDE_DONE, GOOD[1]: SLIDE_DONE, DAPI: SLIDE_FAILED, BROKEN: SLIDE_FAILED}
    assert cohort.runner.model.class_names == ("Tumour", "Stroma")
    assert cell(cohort, GOOD[0], cohort.runner.model.class_column("Tumour")) == "75.0"
    assert "2 attempts" in cell(cohort, GOOD[1], COL_STATUS, Qt.ItemDataRole.ToolTipRole)
    assert cohort.settings_label.text().endswith("on Ray: 2 workers, 1 CPU each, on 1 node")
    assert window.settings.get("cohort/run_on") == RUN_RAY  # remembered


def test_ray_pause_keeps_finished_rows_and_errors_are_one_line(qtbot, window, cohort_folder: Path,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoyang_desktop.core.cluster import availability
    from chaoyang_desktop.core.cluster.events import SlideDone, SlideStarted
    from chaoyang_desktop.core.errors import ChaoyangError

    def stops_after_one(slides, model, engine, settings, cluster, *, on_event, cancel, cache=None, fresh=False):  # type: ignore[no-untyped-def]
        for s in slides:
            on_event(SlideStarted(s.index, 1, "worker 1", 1))
            if Path(s.path).name == GOOD[0]:
                on_event(SlideDone(s.index, SlideReport(s.path, SLIDE_DONE, summary=None, seconds=1.0)))
        assert cancel.wait(30)  # until Pause

    cohort = open_cohort(qtbot, window, cohort_folder)
    runner = window.cohort
    runner.ray.runner = stops_after_one
    cohort.run_on_combo.setCurrentIndex(cohort.run_on_combo.findData(RUN_RAY))
    assert cohort.analyze_all()
    qtbot.waitUntil(lambda: statuses(cohort)[GOOD[1]] == SLIDE_RUNNING, timeout=10000)
    window.host.busy_changed.emit(False)  # the worker going idle means nothing to a cluster's run
    assert runner.state == STATE_RUNNING and statuses(cohort)[GOOD[1]] == SLIDE_RUNNING
    with qtbot.waitSignal(runner.state_changed, timeout=10000, check_params_cb=lambda s: s == STATE_PAUSED):
        cohort.pause_button.click()
    assert statuses(cohort) == {GOOD[0]: SLIDE_DONE, GOOD[1]: SLIDE_QUEUED, DAPI: SLIDE_QUEUED,
                                BROKEN: SLIDE_QUEUED}
    # Resume sends only the slides not ended; this time the cluster cannot be reached.
    sent: list[list[str]] = []

    def unreachable(slides, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append([Path(s.path).name for s in slides])
        raise ChaoyangError("Cannot connect to the Ray cluster at 10.0.0.1:6379:\nis `ray start --head` running?")

    runner.ray.runner = unreachable
    with qtbot.waitSignal(runner.failed, timeout=10000):
        cohort.pause_button.click()
    assert sent == [[DAPI, BROKEN, GOOD[1]]]
    assert window.last_error == "Cannot connect to the Ray cluster at 10.0.0.1:6379: is `ray start --head` running?"
    assert statuses(cohort)[GOOD[0]] == SLIDE_DONE and statuses(cohort)[GOOD[1]] == SLIDE_NEW
    assert runner.state == STATE_IDLE

    # Without Ray installed: its install command, and nothing starts.
    monkeypatch.setattr(availability, "ray_available", lambda: False)
    assert not cohort.analyze_all()
    assert "pip install" in window.last_error and runner.state == STATE_IDLE


def test_settings_dialog_has_the_cluster(qtbot, app_settings) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.gui.overlay_panel import DEFAULT_CLASS_NAMES
    from chaoyang_desktop.gui.settings_dialog import SettingsDialog

    assert app_settings.cluster_settings().address == "local"
    dialog = SettingsDialog(app_settings, DEFAULT_CLASS_NAMES)
    qtbot.addWidget(dialog)
    assert dialog.ray_address_edit.text() == "" and dialog.ray_address_edit.placeholderText() == "local"
    dialog.ray_address_edit.setText(" head:6379 ")
    dialog.cpus_per_worker_spin.setValue(4)
    dialog.accept()
    cluster = app_settings.cluster_settings()
    assert (cluster.address, cluster.cpus_per_worker) == ("head:6379", 4)
    again = SettingsDialog(app_settings, DEFAULT_CLASS_NAMES)
    qtbot.addWidget(again)
    assert again.ray_address_edit.text() == "head:6379"
    again._restore_defaults()  # noqa: SLF001
    again.accept()
    assert app_settings.cluster_settings().address == "local"


def test_table_sorts_statuses_in_their_order_without_a_window(qtbot) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.core.analysis.cohort import SLIDE_STATUSES
    from chaoyang_desktop.gui.cohort_model import CohortFilter, CohortTableModel

    model = CohortTableModel(("A", "B"))
    paths = [f"/x/s{i}.svs" for i in range(len(SLIDE_STATUSES))]
    model.set_slides(paths, Path("/x"))
    for i, status in enumerate(reversed(SLIDE_STATUSES)):
        model.update(i, status=status)
    proxy = CohortFilter()
    proxy.setSourceModel(model)
    proxy.sort(COL_STATUS, Qt.SortOrder.AscendingOrder)
    shown = [proxy.index(i, COL_STATUS).data(VALUE_ROLE) for i in range(proxy.rowCount())]
    assert shown == list(SLIDE_STATUSES)
    proxy.sort(COL_STATUS, Qt.SortOrder.DescendingOrder)
    assert [proxy.index(i, COL_STATUS).data(VALUE_ROLE) for i in range(proxy.rowCount())] == list(reversed(SLIDE_STATUSES))
    proxy.set_status(SLIDE_QUEUED)
    assert proxy.rowCount() == 1 and proxy.index(0, COL_STATUS).data() == SLIDE_QUEUED


def test_a_cohort_sent_to_a_real_local_ray_opens_its_slides_with_their_heatmaps(  # type: ignore[no-untyped-def]
        qtbot, window, cohort_folder: Path, reference, local_ray) -> None:
    # The session's local Ray (2 CPUs); "local" joins it instead of starting another.
    cohort = open_cohort(qtbot, window, cohort_folder)
    window.settings.set("cluster/ray_address", "local")
    cohort.run_on_combo.setCurrentIndex(cohort.run_on_combo.findData(RUN_RAY))
    run_all(qtbot, cohort, timeout=180000)
    assert statuses(cohort) == {GOOD[0]: SLIDE_DONE, GOOD[1]: SLIDE_DONE, DAPI: SLIDE_OUT_OF_DOMAIN,
                                BROKEN: SLIDE_FAILED}
    for name in GOOD:
        report = rows_by_name(cohort)[name].report
        assert report.worker.startswith("worker ") and report.summary == reference(cohort_folder / name).summary()
    assert "on Ray: " in cohort.settings_label.text()
    # The result streamed into the local cache: the slide opens with its heatmap, nothing classified again.
    path = str(cohort_folder / GOOD[0])
    with qtbot.waitSignal(window.heatmap_refreshed, timeout=30000):
        window.open_cohort_slide(path)
    r = window.result
    assert window.slide_path == path and r is not None and r.complete and window.heatmap.layer is not None
    assert r.summary() == rows_by_name(cohort)[GOOD[0]].report.summary


def test_a_damaged_first_slide_does_not_stop_the_folder_from_opening(qtbot, window, cohort_folder: Path) -> None:  # type: ignore[no-untyped-def]
    (cohort_folder / DAPI).unlink()  # the broken .svs is now listed first
    with qtbot.waitSignal(window.slide_opened, timeout=20000):
        assert window.open_paths([str(cohort_folder)])
    assert [Path(p).name for p in window.slide_list.paths()][0] == BROKEN
    assert Path(window.slide_path).name == GOOD[0] and window.last_error is None  # no dialog in the way
    assert statuses(window.cohort_window) == {BROKEN: SLIDE_NEW, GOOD[0]: SLIDE_NEW, GOOD[1]: SLIDE_NEW}
    for name in GOOD:
        (cohort_folder / name).write_bytes(b"damaged too")
    assert not window.open_paths([str(cohort_folder)])  # none opens: the first one's reason, once
    assert window.last_error is not None and BROKEN in window.last_error


def test_ray_tile_progress_moves_the_row_and_the_pace(qtbot, window, cohort_folder: Path) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.core.cluster.events import SlideProgress, SlideStarted

    cohort = open_cohort(qtbot, window, cohort_folder)
    runner = cohort.runner
    row = runner.model.row_of(str(cohort_folder / GOOD[0]))
    runner.clock.start()
    runner._on_ray_event(SlideStarted(row, 1, "worker 1 on node-a", 4242))  # noqa: SLF001 (what the bridge delivers)
    runner._on_ray_event(SlideProgress(row, 3, 12))  # noqa: SLF001
    r = runner.model.rows[row]
    assert r.status == SLIDE_RUNNING and (r.done, r.total) == (3, 12) and r.fraction == pytest.approx(0.25)
    assert runner.clock.work_done() == pytest.approx(0.25)


def test_without_ray_the_cluster_choice_is_greyed_out_and_says_how_to_install_it(  # type: ignore[no-untyped-def]
        qtbot, window, cohort_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoyang_desktop.core.cluster import availability

    monkeypatch.setattr(availability, "ray_available", lambda: False)
    cohort = open_cohort(qtbot, window, cohort_folder)
    combo = cohort.run_on_combo
    i = combo.findData(RUN_RAY)
    assert combo.itemText(i) == "Ray cluster (not installed)" and not combo.model().item(i).isEnabled()
    assert 'pip install "chaoyang-desktop[cluster]"' in combo.itemData(i, Qt.ItemDataRole.ToolTipRole)

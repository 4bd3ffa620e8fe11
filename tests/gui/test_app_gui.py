"""Opening things, the patch gallery, settings, the model dialog, `view --screenshot`, and leaks."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from chaoyang_desktop.gui.gallery import FILTER_ALL, SORT_CONF_DESC
from chaoyang_desktop.gui.main_window import PAGE_GALLERY, PAGE_SLIDE
from chaoyang_desktop.gui.open_targets import KIND_PATCHES, KIND_SLIDE, KIND_SLIDES, resolve_open
from chaoyang_desktop.gui.settings import AppSettings


def drop(widget: QWidget, paths: list[Path]) -> None:
    """A simulated drag-and-drop of files from a file manager."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    assert event.isAccepted()


def test_what_a_path_opens_as(test_data: Path) -> None:
    assert resolve_open([test_data / "slides" / "CMU-1-Small-Region.svs"]).kind == KIND_SLIDE
    assert resolve_open([test_data / "images" / "CMU-1-Small-Region_full.jpg"]).kind == KIND_SLIDE
    folder = resolve_open([test_data / "slides"])
    assert folder.kind == KIND_SLIDES and len(folder.paths) == 3
    patches = resolve_open([test_data / "patches"])
    assert patches.kind == KIND_PATCHES and len(patches.paths) == 41
    one = next((test_data / "patches" / "crc9" / "TUM").iterdir())
    assert resolve_open([one]).kind == KIND_PATCHES


def test_drop_a_folder_of_patches_opens_the_classified_gallery(qtbot, window, test_data: Path,
                                                              tiny_model: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = test_data / "patches"
    with qtbot.waitSignal(window.analysis_finished, timeout=60000) as blocker:
        drop(window, [folder])
    assert blocker.args == ["done"]
    assert window.stack.currentIndex() == PAGE_GALLERY
    gallery = window.gallery
    assert len(gallery.paths) == 41 and gallery.is_complete()
    # Quality control (on by default) leaves the published background patches out, not as errors.
    flagged = {r.path for r in gallery.qc_flagged()}
    assert {p for p in gallery.paths if Path(p).parent.name in ("BACK", "08_EMPTY")} <= flagged
    assert not gallery.unreadable()
    counts = gallery.counts_by_class()
    assert sum(counts.values()) == 41 - len(flagged)
    for name, n in counts.items():
        assert f"{name}&nbsp;<b>{n}</b>" in gallery.counts.text()
    assert f"{len(flagged)} left out by quality control" in gallery.counts.text()
    assert f"({len(flagged)} left out by quality control)" in window.statusBar().currentMessage()
    # Filter and sort.
    top = max(counts, key=counts.get)
    gallery.set_filter(gallery.class_names.index(top), 0.0, SORT_CONF_DESC)
    shown = gallery.visible_paths()
    assert len(shown) == counts[top]
    by_path = {r.path: r for r in gallery.results()}
    confs = [by_path[p].confidence for p in shown]
    assert confs == sorted(confs, reverse=True)
    gallery.set_filter(FILTER_ALL, 0.99)
    assert all(by_path[p].confidence >= 0.99 for p in gallery.visible_paths())
    gallery.set_filter(FILTER_ALL, 0.0)
    # Open a patch: its probabilities in the detail panel.
    gallery.select_path(shown[0])
    assert gallery.detail_probabilities == pytest.approx(by_path[shown[0]].probabilities)
    # Export: the same bytes `classify` writes for the same folder and model.
    from chaoyang_desktop.cli import main as cli_main

    for fmt in ("csv", "json"):
        ours, theirs = tmp_path / f"gui.{fmt}", tmp_path / f"cli.{fmt}"
        gallery.export_to(str(ours), fmt)
        assert cli_main(["classify", str(folder), "--model", str(tiny_model), "--format", fmt, "-o", str(theirs),
                         "--device", "cpu", "-q"]) == 0
        assert ours.read_text() == theirs.read_text()
    assert len(json.loads((tmp_path / "gui.json").read_text())) == 41


def test_gallery_badges_patches_quality_control_left_out(qtbot, window, test_data: Path,
                                                          tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses
    import shutil

    from chaoyang_desktop.gui.gallery import FILTER_QC, QC_BADGE, PathRole, ResultRole

    folder = tmp_path / "two"
    folder.mkdir()
    back = folder / "back.tif"
    tum = folder / "tum.png"
    shutil.copy(next((test_data / "patches" / "crc9" / "BACK").iterdir()), back)
    shutil.copy(next((test_data / "patches" / "crc9" / "TUM").glob("*.png")), tum)
    with qtbot.waitSignal(window.analysis_finished, timeout=60000) as blocker:
        window.open_paths([str(folder)], auto_classify=True)
    assert blocker.args == ["done"]
    gallery = window.gallery
    qtbot.waitUntil(lambda: gallery.reader.pending() == 0, timeout=10000)
    by_path = {r.path: r for r in gallery.results()}
    assert by_path[str(back)].qc_flagged and not by_path[str(back)].classified
    assert by_path[str(tum)].classified
    assert gallery.counts_by_class()[by_path[str(tum)].label] == 1 and sum(gallery.counts_by_class().values()) == 1

    def row_of(path: Path) -> int:
        return next(r for r in range(gallery.proxy.rowCount()) if gallery.proxy.index(r, 0).data(PathRole) == str(path))

    def tooltip(path: Path) -> str:
        return gallery.proxy.index(row_of(path), 0).data(Qt.ItemDataRole.ToolTipRole)

    assert "Not classified: glass or background" in tooltip(back)
    tum_tip = tooltip(tum)
    result = by_path[str(tum)]
    assert f"Margin {result.margin:.2f}" in tum_tip and f"entropy {result.entropy:.2f}" in tum_tip
    assert ("(unsure)" in tum_tip) == (result.margin < 0.2) and "TTA spread" not in tum_tip
    # Painted: a grey badge under the background patch's thumbnail, none under the classified one.
    def badge_pixels(path: Path) -> int:
        image = gallery.view.viewport().grab().toImage()
        rect = gallery.view.visualRect(gallery.proxy.index(row_of(path), 0))
        return sum(image.pixelColor(x, y) == QC_BADGE
                   for x in range(rect.left(), rect.right()) for y in range(rect.top(), rect.bottom()))

    badge = badge_pixels(back)
    assert badge > 1000 and badge_pixels(tum) < 50  # (a stray pixel of that grey in a photo)
    # Its own filter, and its reason in the details.
    gallery.set_filter(FILTER_QC)
    assert gallery.visible_paths() == [str(back)]
    gallery.select_path(str(back))
    assert badge_pixels(back) < 1.2 * badge  # selected, still the badge alone (not a grey-filled cell)
    assert "Not classified: glass or background" in gallery.detail_title.text()
    assert gallery.detail_probabilities == () and "Quality control" in gallery.detail_path.text()
    gallery.set_filter(FILTER_ALL)
    # An unsure patch with TTA says so.
    gallery.add_results([dataclasses.replace(result, margin=0.05, tta_spread=0.031)])
    tum_tip = tooltip(tum)
    assert "Margin 0.05 (unsure)" in tum_tip and "TTA spread 0.03" in tum_tip
    assert gallery.proxy.index(row_of(tum), 0).data(ResultRole).unsure
    # With quality control off in the settings, the background patch is classified too.
    window.settings.set("analysis/qc", False)
    with qtbot.waitSignal(window.analysis_finished, timeout=60000):
        window.classify_patches()
    assert not gallery.qc_flagged() and all(r.classified for r in gallery.results())
    assert sum(gallery.counts_by_class().values()) == 2


def test_patch_classification_can_be_cancelled(qtbot, window, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    window.settings.set("engine/batch_size", 2)
    window.open_paths([str(test_data / "patches")], auto_classify=False)
    assert not window.gallery.results() and window.act_analyze.text() == "&Classify Patches"
    with qtbot.waitSignal(window.host.patch_results, timeout=30000):
        window.analyze()
    assert window.progress.isVisible()
    with qtbot.waitSignal(window.analysis_finished, timeout=30000) as blocker:
        window.progress.cancel_button.click()
    assert blocker.args == ["cancelled"]
    assert 0 < len(window.gallery.results()) < 41
    assert "cancelled" in window.statusBar().currentMessage()


def test_drop_a_slide_file_anywhere_opens_it(qtbot, window, cmu_slide: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.slide_opened, timeout=10000):
        drop(window.welcome, [cmu_slide])  # onto a child: the window takes it
    assert window.stack.currentIndex() == PAGE_SLIDE
    assert window.windowTitle().startswith("CMU-1-Small-Region.svs")
    assert str(cmu_slide.resolve()) in window.settings.recent_files()


def test_folder_of_slides_opens_a_slide_list(qtbot, window, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    assert window.open_paths([str(test_data / "slides")])
    assert window.slides_dock.isVisible()
    paths = window.slide_list.paths()
    assert len(paths) == 3 and window.slide_path == paths[0]
    with qtbot.waitSignal(window.slide_opened, timeout=10000):
        window.slide_list.slide_chosen.emit(paths[1])
    assert window.slide_path == paths[1]
    props = window.properties_panel
    texts = [props.form.itemAt(i).widget().text() for i in range(props.form.count()) if props.form.itemAt(i).widget()]
    assert any("Hamamatsu" in t for t in texts) and any("\u00b5m/px" in t for t in texts)


def test_recent_files_menu(qtbot, window, cmu_slide: Path) -> None:  # type: ignore[no-untyped-def]
    window.open_paths([str(cmu_slide)])
    window._fill_recent_menu()
    actions = [a for a in window.recent_menu.actions() if a.text() == cmu_slide.name]
    assert actions
    window.close_current()
    with qtbot.waitSignal(window.slide_opened, timeout=10000):
        actions[0].trigger()


def test_settings_persist_in_an_isolated_store(qtbot, settings_file: Path, app_settings: AppSettings) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(app_settings, ("Normal", "Serrated", "Adenocarcinoma", "Adenoma"))
    qtbot.addWidget(dialog)
    dialog.batch_spin.setValue(32)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    dialog.precision_combo.setCurrentIndex(dialog.precision_combo.findData("fp32"))
    dialog.tile_spin.setValue(128.0)
    dialog.stride_spin.setValue(64.0)
    dialog.tissue_spin.setValue(0.4)
    dialog.channel_combo.setCurrentIndex(dialog.channel_combo.findData("rgb"))
    dialog.workers_spin.setValue(2)
    dialog.set_color(2, "#123456")
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    again = AppSettings(QSettings(str(settings_file), QSettings.Format.IniFormat))
    req = again.model_request()
    assert (req.batch_size, req.device, req.precision, req.channel_order) == (32, "cpu", "fp32", "rgb")
    a = again.analysis_request()
    assert (a.tile_um, a.stride_um, a.tissue_threshold, a.workers) == (128.0, 64.0, pytest.approx(0.4), 2)
    assert again.class_color("Adenocarcinoma", "#000000") == "#123456"
    assert "batch_size=32" in settings_file.read_text()
    from chaoyang_desktop.gui.settings import user_settings

    assert not Path(user_settings().fileName()).exists()  # the user's store was never written


def test_settings_dialog_refuses_a_stride_that_does_not_divide_the_tile(qtbot, app_settings: AppSettings) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(app_settings, ("A", "B"))
    qtbot.addWidget(dialog)
    dialog.tile_spin.setValue(256.0)
    dialog.stride_spin.setValue(100.0)
    dialog.accept()
    assert not dialog.error_label.isHidden() and "multiple" in dialog.error_label.text()
    assert app_settings.get("analysis/stride_um") == 0.0


def test_damaged_settings_fall_back_to_defaults(settings_file: Path) -> None:
    settings_file.write_text("[engine]\nbatch_size=lots\n[analysis]\ntissue_threshold=x\n")
    s = AppSettings(QSettings(str(settings_file), QSettings.Format.IniFormat))
    assert s.get("engine/batch_size") == 16 and s.get("analysis/tissue_threshold") == 0.25


def test_missing_model_offers_download_or_a_local_folder(qtbot, make_window, cmu_slide: Path, tiny_model: Path) -> None:  # type: ignore[no-untyped-def]
    window = make_window(model="nobody/no-such-model")
    window.open_paths([str(cmu_slide)])
    qtbot.waitUntil(window.slide_view.is_idle, timeout=20000)
    with qtbot.waitSignal(window.analysis_finished, timeout=20000) as blocker:
        window.run_analysis()
    assert blocker.args == ["model-missing"]
    dialog = window.model_dialog
    assert dialog.isVisible()
    assert "licensed for non-commercial use" in " ".join(
        w.text() for w in dialog.findChildren(type(dialog.status)))
    assert dialog.download_button.isEnabled() and dialog.folder_button.isEnabled()
    assert not dialog.choose_folder(str(cmu_slide.parent))  # no config.json there: stays open
    assert "config.json" in dialog.status.text()
    with qtbot.waitSignal(window.analysis_finished, timeout=30000) as blocker:
        assert dialog.choose_folder(str(tiny_model))
    assert blocker.args == ["done"]
    assert window.settings.get("model/spec") == str(tiny_model)


def test_model_download_reports_failure_offline(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window(model="nobody/no-such-model")
    window.show_model_dialog("Model nobody/no-such-model is not downloaded yet.")
    dialog = window.model_dialog
    dialog._repo_id = "nobody/no-such-model"
    dialog.start_download()
    assert not dialog.download_button.isEnabled() and dialog.progress.isVisible()
    qtbot.waitUntil(lambda: dialog.download_button.isEnabled(), timeout=30000)  # HF_HUB_OFFLINE: fails fast
    assert dialog.status.text() and not dialog.progress.isVisible()
    dialog.reject()


def test_cpu_fallback_is_shown_in_the_status_bar(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: no fallback to show")
    window = make_window()
    window.settings.set("engine/device", "cuda")
    window._settings_applied()
    qtbot.waitUntil(lambda: "cuda" in window.device_label.warning.lower(), timeout=20000)
    assert window.device_label.description.startswith("CPU")
    assert "\u26a0" in window.device_label.text()


def test_about_says_research_use_only(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.show_about()
    boxes = [w for w in QApplication.topLevelWidgets() if w.isVisible() and "research use only" in
             getattr(w, "text", lambda: "")()]
    assert boxes
    for b in boxes:
        b.close()


def test_no_widget_or_thread_leaks(qtbot, app_settings: AppSettings, tiny_model: Path, cmu_slide: Path) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.gui.main_window import MainWindow

    def ours() -> set[int]:
        return {id(w) for w in QApplication.topLevelWidgets() if type(w).__name__ != "QTipLabel"}

    QApplication.sendPostedEvents(None, 0)
    before = ours()
    window = MainWindow(app_settings, model=str(tiny_model))
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.show()
    window.open_paths([str(cmu_slide)])
    window.open_settings()
    qtbot.waitUntil(window.slide_view.is_idle, timeout=20000)
    thread = window.host.thread
    with qtbot.waitSignal(window.destroyed, timeout=10000):
        window.close()
        QApplication.sendPostedEvents(None, 0)  # deleteLater
    # The worker thread is owned by the window (through its job host) and went with it; Qt
    # aborts the process when a running QThread is deleted, so it had finished.
    import shiboken6

    assert not shiboken6.isValid(thread)
    QApplication.sendPostedEvents(None, 0)
    assert ours() <= before


def test_view_screenshot_after_analysis(tmp_path: Path, cmu_slide: Path, tiny_model: Path) -> None:
    from PySide6.QtGui import QImage

    from chaoyang_desktop import app
    from chaoyang_desktop.cli import build_parser

    out = tmp_path / "shot.png"
    args = build_parser().parse_args(["view", str(cmu_slide), "--model", str(tiny_model), "--analyze",
                                      "--screenshot", str(out), "--size", "1000x700", "--device", "cpu"])
    try:
        assert app.run_view(args) == 0
    finally:
        _drop_log_handler()
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1000, 700)
    from chaoyang_desktop.core.paths import log_dir

    assert (log_dir() / app.LOG_FILE_NAME).is_file()  # the log file in the (test's) user data folder


def test_view_fails_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chaoyang_desktop.cli import main as cli_main

    try:
        code = cli_main(["view", str(tmp_path / "missing.svs"), "--screenshot", str(tmp_path / "x.png")])
    finally:
        _drop_log_handler()
    assert code == 1
    assert "missing.svs" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def _drop_log_handler() -> None:
    from chaoyang_desktop import app

    if app._log_handler is not None:
        logging.getLogger().removeHandler(app._log_handler)
        app._log_handler.close()
        app._log_handler = None


def test_parser_view_namespace_is_what_run_view_reads() -> None:
    from chaoyang_desktop.cli import build_parser

    args = build_parser().parse_args(["view", "x.svs"])
    assert isinstance(args, argparse.Namespace)
    for name in ("path", "analyze", "screenshot", "mpp", "tissue_threshold", "tile_um", "stride_um", "size", "model",
                 "device", "precision", "batch_size", "threads", "channel_order", "resize", "offline"):
        assert hasattr(args, name)


def test_view_thumbnail_side_matches_the_pipeline() -> None:
    from chaoyang_desktop.core.analysis.pipeline import THUMB_MAX_SIDE
    from chaoyang_desktop.gui.slide_view import THUMB_SIDE

    assert THUMB_SIDE == THUMB_MAX_SIDE  # the worker plans with the view's thumbnail


def test_a_second_launch_hands_its_paths_to_the_running_app(qtbot, cmu_slide: Path) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop import app
    from chaoyang_desktop.gui.single_instance import SingleInstance

    running = SingleInstance()  # the default per-user name, as run_gui uses
    assert running.listen()
    try:
        with qtbot.waitSignal(running.paths_received, timeout=5000) as got:
            assert app.run_gui([str(cmu_slide)]) == 0  # returns at once: no second window
        assert got.args[0] == [str(cmu_slide.resolve())]
    finally:
        running.close()
        _drop_log_handler()
    assert not [w for w in QApplication.topLevelWidgets() if type(w).__name__ == "MainWindow" and w.isVisible()]


def test_an_exception_on_a_worker_thread_is_shown_from_the_gui_thread(qtbot, qapp) -> None:  # type: ignore[no-untyped-def]
    import sys
    import threading

    from PySide6.QtWidgets import QApplication

    from chaoyang_desktop import app

    saved = sys.excepthook
    app._install_excepthook()
    try:
        def fail_on_a_worker() -> None:
            try:
                raise RuntimeError("boom on a worker")
            except RuntimeError:
                sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]

        thread = threading.Thread(target=fail_on_a_worker)
        thread.start()
        thread.join()

        def shown() -> list:  # type: ignore[type-arg]
            return [w for w in QApplication.topLevelWidgets()
                    if w.objectName() == "error_dialog" and "boom on a worker" in w.text()]

        qtbot.waitUntil(lambda: bool(shown()), timeout=5000)
        box = shown()[0]
        assert box.thread() is qapp.thread()  # built on the GUI thread, not the worker's
        assert "RuntimeError" in box.detailedText()
        box.close()
    finally:
        sys.excepthook = saved

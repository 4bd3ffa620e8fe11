"""The main window: it wires the slide session, the controllers and the widgets together.

Layout (built by :mod:`~chaoyang_desktop.gui.main_window_ui`): the centre is a stack of the start
page, the slide view and the patch gallery; right docks hold the overlay controls and legend,
the summary, and the inspector, slide properties, analyses and annotations as tabs; a left dock
lists the slides of an opened folder; the status bar shows the device, the running job and the
cursor position.

State lives in the open slide's :class:`~chaoyang_desktop.core.session.SlideSession` (dropped
when another slide opens, so nothing of one slide shows on another). The controllers depend on
the session and the job host, not on the window: :class:`SlideAnalysis` runs analyses and
previews, :class:`AnnotationController` the annotation tools and panel, :class:`TileInspection`
the inspector, :class:`PatchClassification` the gallery's job; :class:`HeatmapPresenter` draws the
layer and the summary. The window opens things, asks the questions, and routes what they say.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDialog, QFileDialog, QMainWindow, QMessageBox, QWidget

from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.core.model.profile import NOMINAL_TILE_PX, NOMINAL_TILE_UM, default_colors
from chaoyang_desktop.core.analysis.results import TILE_PENDING
from chaoyang_desktop.core.session import SlideSession
from chaoyang_desktop.gui.analysis_worker import (
    AnalysisRequest,
    DeviceInfo,
    ModelRequest,
    PlanReady,
    SlideJob,
    WorkerHost,
)
from chaoyang_desktop.gui.annotation_controller import GEOJSON_SUFFIXES, AnnotationController
from chaoyang_desktop.gui.cohort_runner import CohortRunner, CohortSnapshot
from chaoyang_desktop.gui.dialogs import open_log_folder, show_about, show_error
from chaoyang_desktop.gui.evaluation_view import Evaluator
from chaoyang_desktop.gui.heatmap_presenter import HeatmapPresenter
from chaoyang_desktop.gui.main_window_ui import (
    build_actions,
    build_docks,
    build_menus,
    build_pages,
    build_status_bar,
    sample_slide,
)
from chaoyang_desktop.gui.open_targets import KIND_SLIDE, KIND_SLIDES, OpenTarget, resolve_open
from chaoyang_desktop.gui.overlay import OverlayStyle
from chaoyang_desktop.gui.overlay_panel import DEFAULT_CLASS_NAMES
from chaoyang_desktop.gui.patch_classification import PatchClassification
from chaoyang_desktop.gui.run_dialogs import BACKGROUND, STAY, ask_before_leaving_run, ask_out_of_domain
from chaoyang_desktop.gui.settings import AppSettings
from chaoyang_desktop.gui.slide_analysis import (
    ENDED_CANCELLED,
    ENDED_DONE,
    ENDED_FAILED,
    ENDED_MODEL_MISSING,
    ENDED_NO_TILES,
    ENDED_OUT_OF_DOMAIN,
    SlideAnalysis,
)
from chaoyang_desktop.gui.slide_exports import SlideExporter
from chaoyang_desktop.gui.slide_view import PlanPreview
from chaoyang_desktop.gui.tile_inspection import TileInspection

if TYPE_CHECKING:
    from chaoyang_desktop.core.model.profile import ModelProfile
    from chaoyang_desktop.gui.cohort_window import CohortWindow
    from chaoyang_desktop.core.slide.roi import Roi

log = logging.getLogger(__name__)

APP_NAME = "Chaoyang Desktop"
RESEARCH_NOTICE = "For research use only; not for diagnosis."
#: Heatmap and summary refresh at most this often while batches arrive.
REFRESH_MS = 250
#: Tiles in view are sent to the front of the queue this long after the view stops moving.
PRIORITISE_MS = 150
NOMINAL_MPP = NOMINAL_TILE_UM / NOMINAL_TILE_PX

PAGE_WELCOME, PAGE_SLIDE, PAGE_GALLERY = range(3)


def _session_attr(name: str, doc: str) -> Any:
    """A window attribute that reads and writes the open slide's session (None without one)."""

    def get(window: MainWindow) -> Any:
        return getattr(window.session, name) if window.session is not None else None

    def put(window: MainWindow, value: Any) -> None:
        if window.session is not None:
            setattr(window.session, name, value)

    return property(get, put, doc=doc)


def _open_dialog_filter() -> str:
    from chaoyang_desktop.core.slide.imageio import IMAGE_SUFFIXES
    from chaoyang_desktop.core.slide.reader import SLIDE_SUFFIXES

    suffixes = sorted(set(SLIDE_SUFFIXES) | set(IMAGE_SUFFIXES))
    pattern = " ".join(f"*{s} *{s.upper()}" for s in suffixes)
    return f"Slides and images ({pattern});;All files (*)"


class MainWindow(QMainWindow):
    """The application window."""

    slide_opened = Signal(str)
    gallery_opened = Signal()
    analysis_finished = Signal(str)  # "done", "cancelled", "failed", "model-missing"
    heatmap_refreshed = Signal()
    error_shown = Signal(str)

    slide = _session_attr("slide", "The open slide.")
    slide_path = _session_attr("path", "The open slide's file.")
    plan = _session_attr("plan", "The plan of the analysis shown.")
    result = _session_attr("result", "The analysis shown, mirrored from the worker.")
    preview_plan = _session_attr("preview_plan", "The last plan of the current settings and region.")
    scheduler = _session_attr("scheduler", "The running analysis's tile queue.")
    roi = _session_attr("roi", "The region analysed and shown; None: the whole slide.")

    def __init__(
        self,
        settings: AppSettings,
        model: str | None = None,
        *,
        host: WorkerHost | None = None,
        interactive: bool = True,
        model_request: ModelRequest | None = None,
        analysis_overrides: dict[str, float | None] | None = None,
        mpp: float | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.interactive = interactive
        self._model_spec = model
        self._model_request_override = model_request
        overrides = {k: v for k, v in (analysis_overrides or {}).items() if v is not None}
        #: ``view --allow-out-of-domain``: analyse slides the domain check refuses, without asking.
        self._always_allow_out_of_domain = bool(overrides.pop("allow_out_of_domain", False))
        self._analysis_overrides = overrides
        self._cli_mpp = mpp
        self.host = host or WorkerHost(self)
        self.last_error: str | None = None

        #: The open slide and everything about it; None on the start page and in the gallery.
        self.session: SlideSession | None = None
        self.profile: ModelProfile | None = None
        self._device_info: DeviceInfo | None = None
        self.display_adjust_dialog: QDialog | None = None
        #: The open slide's analysis and preview jobs (they follow the session).
        self.analysis = SlideAnalysis(self.host, self)
        #: The opened folder's slides analysed as one cohort (its window is made with the first folder).
        self.cohort = CohortRunner(self.host, self.cohort_snapshot, settings.cluster_settings, DEFAULT_CLASS_NAMES,
                                   parent=self)
        self.cohort_window: CohortWindow | None = None
        #: A cohort slide being opened: its stored result is looked up with the cohort's settings.
        self._lookup_with: tuple[str, tuple[ModelRequest, AnalysisRequest]] | None = None
        self._pending_after_model: str | None = None
        self._awaiting_confirm = False
        self._background_note = ""
        self.model_dialog: QWidget | None = None
        self.settings_dialog: QWidget | None = None
        self.out_of_domain_dialog: QMessageBox | None = None
        self.leave_run_dialog: QMessageBox | None = None

        names = DEFAULT_CLASS_NAMES
        colors = settings.class_colors(names, default_colors(names))
        self.style_ = OverlayStyle.for_classes(names, colors).replace(
            opacity=settings.get("overlay/opacity"), alpha_by_confidence=settings.get("overlay/alpha_by_confidence"),
            min_confidence=settings.get("overlay/min_confidence"))

        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self._build_central()
        self._build_docks()
        self._build_actions()
        self._build_status_bar()
        self._build_controllers()
        self._connect_host()
        self._connect_analysis()

        self._prioritise_timer = QTimer(self, singleShot=True, interval=PRIORITISE_MS)
        self._prioritise_timer.timeout.connect(self.prioritise_visible_tiles)
        self.slide_view.state.changed.connect(self._on_view_changed)
        self._update_actions()
        self.welcome.set_recent(settings.recent_files())
        self.host.probe_device(self._model_request().device)

    # ===== construction ====================================================================================
    def _build_central(self) -> None:
        build_pages(self)
        self.banner.run_button.clicked.connect(lambda: self.run_analysis())
        self.banner.cancel_button.clicked.connect(self._dismiss_banner)
        self.banner.fast_button.clicked.connect(self.use_fast_cpu_mode)
        self.banner.overlap_combo.currentIndexChanged.connect(self._overlap_preset_changed)
        self.welcome.open_file.connect(self.open_file_dialog)
        self.welcome.open_folder.connect(self.open_folder_dialog)
        self.welcome.open_sample.connect(self.open_sample_slide)
        self.welcome.sample_button.setVisible(sample_slide() is not None)
        self.welcome.open_recent.connect(lambda p: self.open_paths([p]))
        self.slide_view.thumbnail_ready.connect(self._on_thumbnail_ready)
        self.gallery.classify_requested.connect(self.classify_patches)
        self.gallery.export_failed.connect(lambda msg: self.report_error("Export failed", msg))

    def _build_docks(self) -> None:
        build_docks(self)
        self.overlay_panel.style_changed.connect(self._on_style_changed)
        self.overlay_panel.color_changed.connect(lambda name, color: self.settings.set_class_color(name, color))
        self.properties_panel.mpp_override.connect(self._on_mpp_override)
        self.slide_list.slide_chosen.connect(self._open_from_list)
        self.analyses_panel.chosen.connect(self.show_analysis_of)

    def _build_actions(self) -> None:
        ctl = self.annotation_ctl = AnnotationController(self.slide_view, self.annotations_panel, self)
        ctl.target_drawn.connect(self.set_target)
        ctl.changed.connect(self._on_annotations_changed)
        ctl.message.connect(self.statusBar().showMessage)
        ctl.failed.connect(lambda message: self.report_error("Annotations", message))
        ctl.set_model_classes(self.style_.class_names, self.style_.class_colors)
        self.act_rect, self.act_poly = ctl.act_rect, ctl.act_poly
        build_actions(self, ctl)
        self.exporter = SlideExporter(self)
        self.evaluator = Evaluator(self)
        self.evaluator.calibration_saved.connect(self.use_calibration)
        group = QActionGroup(self)
        group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        for act in ctl.tool_actions.values():
            group.addAction(act)

        build_menus(self, ctl)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)

    def _build_status_bar(self) -> None:
        build_status_bar(self)
        self.progress.cancel_requested.connect(self.cancel_job)

    def _build_controllers(self) -> None:
        self.inspection = TileInspection(self.slide_view, self.inspector, self.cursor_label, self)
        self.inspection.style = self.style_
        self.inspection.tile_shown.connect(self._on_tile_shown)
        self.heatmap = HeatmapPresenter(self.slide_view, self.summary_panel)
        self.patches = PatchClassification(self.host, self.gallery, self.progress, self.settings, self)
        self.patches.ended.connect(self._on_patches_ended)

    def _connect_host(self) -> None:
        h = self.host
        h.device_ready.connect(self._on_device)
        h.model_ready.connect(self._on_model_ready)
        h.busy_changed.connect(self._update_actions)
        c = self.cohort
        c.model_missing.connect(self._cohort_model_missing)
        c.failed.connect(lambda message: self.report_error("The cohort cannot run", message, parent=self.cohort_window))
        c.paced.connect(lambda line: self.cohort_label.setText(f"Cohort: {line}"))
        c.state_changed.connect(lambda _state: self.cohort_label.setVisible(self.cohort.active))

    # ===== requests built from the settings ===================================================================
    def _model_request(self) -> ModelRequest:
        if self._model_request_override is not None:
            return self._model_request_override
        return self.settings.model_request(self._model_spec)

    def cohort_snapshot(self) -> CohortSnapshot:
        """What a cohort run uses: Settings and the command line (never the open slide's region or preset)."""
        request = self.settings.analysis_request(None, **self._analysis_overrides)
        if self._always_allow_out_of_domain:
            request = dataclasses.replace(request, allow_out_of_domain=True)
        return CohortSnapshot(self._model_request(), request, self._cli_mpp)

    def analysis_request(self) -> AnalysisRequest:
        request = self.settings.analysis_request(self.roi, **self._analysis_overrides)
        overlap = float(self.banner.overlap_combo.currentData() or 0.0)
        if overlap > 0:  # the preview's preset for this slide: the stride is a share of the tile
            tile = request.tile_um or (self.profile.tile_um if self.profile is not None else NOMINAL_TILE_UM)
            request = dataclasses.replace(request, tile_um=tile, stride_um=tile * (1.0 - overlap))
        if self._always_allow_out_of_domain or (
                self.session is not None and self.session.out_of_domain_allowed):
            request = dataclasses.replace(request, allow_out_of_domain=True)
        return request

    # ===== opening ===================================================================================================
    def open_file_dialog(self) -> None:
        start = str(Path(self.settings.recent_files()[0]).parent) if self.settings.recent_files() else ""
        paths, _ = QFileDialog.getOpenFileNames(self, "Open slides or images", start, _open_dialog_filter())
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of slides or patches")
        if folder:
            self.open_paths([folder])

    def open_paths(self, paths: list[str], *, auto_classify: bool | None = None) -> bool:
        """Open files and folders: one slide, a slide list, or the patch gallery. False on failure.

        While an analysis runs, the user is asked first (the paths open once they agree).
        """
        if self._ask_before_leaving_run(lambda: self.open_paths(paths, auto_classify=auto_classify)):
            return True
        try:
            target = resolve_open(paths)
        except ChaoyangError as exc:
            self.report_error("Cannot open", str(exc))
            return False
        recent = paths[0] if len(paths) == 1 else str(target.paths[0])
        self.settings.add_recent_file(str(Path(recent).resolve()))
        self.welcome.set_recent(self.settings.recent_files())
        if target.kind == KIND_SLIDE:
            self.slides_dock.hide()
            return self.open_slide_file(str(target.paths[0]))
        if target.kind == KIND_SLIDES:
            note = (f"{target.skipped_patches} small image(s) not listed: open their folder to see them as patches."
                    if target.skipped_patches else "")
            self.slide_list.set_slides(list(target.paths), target.folder, note)
            self.slides_dock.show()
            self.resizeDocks([self.slides_dock], [250], Qt.Orientation.Horizontal)
            self.show_cohort([str(p) for p in target.paths], target.folder)
            return self._open_first_readable([str(p) for p in target.paths])
        self.slides_dock.hide()
        return self.open_gallery(target, auto_classify=auto_classify)

    def _ask_before_leaving_run(self, then: Callable[[], object], action: str = "Open") -> bool:
        """Ask before a running analysis is left by opening something else, closing or quitting; True when asked.

        The analysis is never stopped without a word (a double-click forwarded from the file
        manager used to end it silently). It can be stopped (its finished tiles are kept:
        Analyze resumes it) or, except when quitting, kept running in the background.
        """
        quitting = action == "Quit"
        background = [h for h in self.host.running_jobs() if h.waited_for] if quitting else []
        cohort = quitting and self.cohort.running
        if not (self.interactive and (self.analysis.running or background or cohort)
                and self.settings.get("ui/ask_before_stopping_a_run")):
            return False
        r = self.result if self.analysis.running else None
        path = self.slide_path if self.analysis.running else getattr(background[0].job, "path", "") if background else ""
        name = Path(path).name if path else "This slide"
        done = f" ({r.n_done:,} of {r.n_tiles:,} tiles done)" if r is not None else ""
        if not (self.analysis.running or background):
            name, done = self.cohort.run_summary()
        session = self.session

        def answered(answer: str) -> None:
            if answer == STAY or session is not self.session:
                return
            if answer == BACKGROUND:
                self.analysis.leave(keep_running=True)
                self.statusBar().showMessage("The analysis goes on in the background; its result is stored.", 10000)
            else:
                self.analysis.leave()  # the finished tiles are checkpointed by the worker as it stops
                self._stop_background_jobs()
                if quitting:
                    self.cohort.cancel()
            then()

        self.leave_run_dialog = ask_before_leaving_run(self, name, done, action, answered)
        return True

    def _leave_current(self) -> None:
        """Stop what the slide or gallery on screen was doing (a run kept going is in the background already)."""
        self.analysis.leave()
        self.patches.leave()
        self.progress.finish()
        self._dismiss_banner()

    def _open_from_list(self, path: str) -> None:
        if not self._ask_before_leaving_run(lambda: self.open_slide_file(path)):
            self.open_slide_file(path)

    def show_cohort(self, paths: list[str] | None = None, folder: Path | None = None) -> None:
        """Show the cohort window; with ``paths``, for these slides (a run of other slides is never replaced)."""
        from chaoyang_desktop.gui.cohort_window import CohortWindow

        if self.cohort_window is None:
            self.cohort_window = win = CohortWindow(self.cohort, self.settings, self)
            win.slide_activated.connect(self.open_cohort_slide)
            win.error_raised.connect(lambda title, message: self.report_error(title, message, parent=win))
            win.exported.connect(lambda folder: self.statusBar().showMessage(f"Cohort exported to {folder}.", 10000))
        if paths is not None and paths != [r.path for r in self.cohort.model.rows]:
            if self.cohort.load(paths, folder):
                self.cohort_window.set_title(folder)
            else:
                self.statusBar().showMessage("The cohort window goes on with its run; cancel it there to load these "
                                             "slides into it.", 15000)
        self.act_cohort.setEnabled(True)
        self.cohort_window.show()
        self.cohort_window.raise_()

    def open_cohort_slide(self, path: str) -> None:
        """Open a slide of the cohort; a finished one shows its result at once (looked up with the cohort's settings)."""
        requests = self.cohort.slide_requests(path)
        self._lookup_with = (path, requests) if requests is not None else None
        self._open_from_list(path)
        self.raise_()
        self.activateWindow()

    def open_cohort_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of slides as a cohort")
        if folder:
            self.open_paths([folder])

    def _open_first_readable(self, paths: list[str], tries: int = 10) -> bool:
        """Open the first of a folder's slides that opens: a damaged one is the cohort's row to
        report (when analysed), not a dialog in the way of the folder. The first error is shown
        only when none of the first ``tries`` opens."""
        errors = []
        for path in paths[:tries]:
            slide = self._read_slide(path, None)
            if not isinstance(slide, str):
                return self._show_slide(path, slide, self._cli_mpp)
            errors.append(slide)
        self.report_error("Cannot open the slide", errors[0] if errors else "The folder has no slide.")
        return False

    def _read_slide(self, path: str, mpp: float | None) -> Any:
        """The opened slide, or why it cannot be opened (one line)."""
        from chaoyang_desktop.core.slide.reader import open_slide

        try:
            return open_slide(path, mpp=mpp if mpp is not None else self._cli_mpp, assumed_mpp=NOMINAL_MPP)
        except ChaoyangError as exc:
            return str(exc)

    def open_slide_file(self, path: str, mpp: float | None = None) -> bool:
        slide = self._read_slide(path, mpp)
        if isinstance(slide, str):
            self.report_error("Cannot open the slide", slide)
            return False
        return self._show_slide(path, slide, mpp if mpp is not None else self._cli_mpp)

    def _show_slide(self, path: str, slide: Any, mpp: float | None) -> bool:
        """Make ``slide`` (opened from ``path``) the one on screen, in a new session."""
        self._leave_current()
        old = self.session
        self.session = SlideSession(path, slide, mpp)
        self.analysis.set_session(self.session)
        self.inspection.session = self.session
        self.heatmap.layer = None
        self.slide_view.set_slide(slide)
        if old is not None:
            old.close()
        self.host.close_slide()
        self.properties_panel.set_slide(slide)
        self.annotation_ctl.set_session(self.session)
        self._refresh_analyses_panel()
        self.summary_panel.clear()
        self.inspector.clear()
        self.slide_list.mark_current(path)
        self.stack.setCurrentIndex(PAGE_SLIDE)
        for dock in self._slide_docks:
            dock.show()
        self.inspector_dock.raise_()
        self.setWindowTitle(f"{Path(path).name} \u2014 {APP_NAME}")
        self.slide_view.setFocus()
        note = ""
        if slide.mpp is None:
            note = "This slide has no pixel size: set it in Slide properties before analysing."
            self.properties_dock.raise_()
        elif slide.mpp_assumed:
            note = f"Pixel size not in the file: {slide.mpp:g} \u00b5m/px assumed (set it in Slide properties)."
        self.statusBar().showMessage(note or f"Opened {Path(path).name}: {slide.dimensions[0]:,} \u00d7 "
                                     f"{slide.dimensions[1]:,} px, {slide.vendor}", 8000)
        self._update_actions()
        self.banner.overlap_combo.blockSignals(True)
        self.banner.overlap_combo.setCurrentIndex(0)  # the overlap preset is chosen per slide
        self.banner.overlap_combo.blockSignals(False)
        self.slide_opened.emit(path)
        return True

    def _on_thumbnail_ready(self) -> None:
        """The slide is on screen: look for a stored analysis of it (planned with this thumbnail)."""
        if self.slide is not None and self.slide.mpp is not None and not self.analysis.running:
            pinned, self._lookup_with = self._lookup_with, None
            self.request_preview(lookup_cache=True,
                                 requests=pinned[1] if pinned is not None and pinned[0] == self.slide_path else None)
            waiting = self._waiting_behind()
            if waiting:  # the worker runs one job at a time: the lookup waits behind it
                self.statusBar().showMessage(f"Its stored analysis, if any, shows when {waiting[0]} is done.", 15000)

    def open_gallery(self, target: OpenTarget, auto_classify: bool | None = None) -> bool:
        from chaoyang_desktop.core.analysis.patches import find_images

        self._leave_current()
        self._close_slide()
        images, problems = find_images([target.folder] if target.folder is not None else list(target.paths))
        self.gallery.set_patches([str(p) for p in images], problems)
        self.gallery.set_classes(self.style_.class_names, self.style_.class_colors)
        self.stack.setCurrentIndex(PAGE_GALLERY)
        self.cursor_label.setText("")
        for dock in self._slide_docks:
            dock.hide()
        name = target.folder.name if target.folder is not None else Path(target.paths[0]).name
        self.setWindowTitle(f"{name} \u2014 {APP_NAME}")
        self.statusBar().showMessage(f"{len(images)} patch image(s)", 6000)
        self._update_actions()
        self.gallery_opened.emit()
        go = self.settings.get("ui/classify_patches_on_open") if auto_classify is None else auto_classify
        if go and images:
            self.classify_patches()
        return True

    def _close_slide(self) -> None:
        if self.session is not None:
            self.slide_view.set_slide(None)
            self.annotation_ctl.set_session(None)
            self.analysis.set_session(None)
            self.inspection.session = None
            self.session.close()
            self.session = None
            self.host.close_slide()
        self.heatmap.layer = None

    def close_current(self) -> None:
        if self._ask_before_leaving_run(self.close_current, action="Close"):
            return
        self._leave_current()
        self._close_slide()
        self.gallery.set_patches([])
        self.slides_dock.hide()
        for dock in self._slide_docks:
            dock.hide()
        self.stack.setCurrentIndex(PAGE_WELCOME)
        self.setWindowTitle(APP_NAME)
        self._update_actions()

    def open_sample_slide(self) -> bool:
        """Open the bundled sample slide (CMU-1 small region, CC0)."""
        path = sample_slide()
        if path is None:
            self.report_error("Sample slide missing", "The sample slide is not part of this installation; "
                              "reinstall Chaoyang Desktop, or open a slide of your own.")
            return False
        return self.open_paths([str(path)])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_files()
        for p in recent:
            act = self.recent_menu.addAction(Path(p).name)
            act.setToolTip(p)
            act.setStatusTip(p)
            act.triggered.connect(lambda _=False, p=p: self.open_paths([p]))
        if recent:
            self.recent_menu.addSeparator()
            clear = self.recent_menu.addAction("Clear Recent")
            clear.triggered.connect(self._clear_recent)
        else:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _clear_recent(self) -> None:
        self.settings.clear_recent_files()
        self.welcome.set_recent([])

    # ----- drag and drop ---------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths and self.session is not None and all(p.lower().endswith(GEOJSON_SUFFIXES) for p in paths):
            event.acceptProposedAction()  # annotations dropped on the open slide
            QTimer.singleShot(0, lambda: [self.annotation_ctl.import_file(p) for p in paths])
        elif paths:
            event.acceptProposedAction()
            # Open after the drop returns, so the drag source is not kept waiting.
            QTimer.singleShot(0, lambda: self.open_paths(paths))

    # ===== analysis ==================================================================================================
    def analyze(self, confirm: bool | None = None) -> None:
        """Analyse the slide (or the selected annotations); in the gallery, classify the patches."""
        if self.stack.currentIndex() == PAGE_GALLERY:
            self.classify_patches()
            return
        if self.slide is None:
            self.open_file_dialog()
            return
        if self.slide.mpp is None:
            self.report_error("Pixel size needed", self._missing_mpp_message())
            self.properties_dock.raise_()
            return
        self._target_selection()
        ask = self.settings.get("ui/confirm_analysis") if confirm is None else confirm
        if ask and self.interactive and not self._awaiting_confirm:
            self._awaiting_confirm = True
            self.banner.ask()
            self.request_preview(lookup_cache=False)
            return
        self.run_analysis()

    def _missing_mpp_message(self) -> str:
        assert self.slide is not None
        try:
            self.slide.require_mpp()
        except ChaoyangError as exc:
            return str(exc)
        return ""

    def run_analysis(self, fresh: bool = False) -> None:
        if self.session is None:
            return
        if self.session.slide.mpp is None:
            self.report_error("Pixel size needed", self._missing_mpp_message())
            return
        self._dismiss_banner()
        if not self.act_preview.isChecked():
            self.slide_view.set_preview(None)
        self._target_selection()
        if self.roi is not None:
            self.session.remember_region(self.roi)  # listed in Analyses, reopened with the slide
            self._refresh_analyses_panel()
        waiting = self._waiting_behind()
        self.analysis.run(self._model_request(), self.analysis_request(), fresh=fresh)
        self._pending_after_model = "slide"
        self.progress.start("Analysing", "tiles")
        self.statusBar().showMessage(f"Waiting for the analysis of {waiting[0]} running in the background\u2026"
                                     if waiting else "Loading the model\u2026")
        self._update_actions()

    def cancel_job(self) -> None:
        """Cancel the running job: analysis or classification (the partial result is kept), export, evaluation.

        With none of these, an analysis running in the background for another slide is cancelled.
        """
        if not self.user_job_running(foreground=True):
            self._stop_background_jobs()
        if self.analysis.running:
            self.analysis.cancel()
            self.progress.set_cancelling()
        self.patches.cancel()
        self.exporter.cancel()
        self.evaluator.cancel()

    def _waiting_behind(self) -> list[str]:
        """The slides analysed in the background that the worker finishes first (a cohort's step aside)."""
        return [Path(h.job.path).name for h in self.host.running_jobs()
                if h.waited_for and isinstance(h.job, SlideJob)]

    def request_preview(self, lookup_cache: bool = False,
                        requests: tuple[ModelRequest, AnalysisRequest] | None = None) -> None:
        """Plan the analysis on the worker (tissue mask, tile grid); optionally look up the cache.

        ``requests``: the model and settings to plan with (a cohort's), instead of the current ones.
        """
        if self.analysis.running:
            # The running analysis already has a plan: show that one.
            if self.plan is not None and (self.act_preview.isChecked() or self._awaiting_confirm):
                self.slide_view.set_preview(PlanPreview.from_plan(self.plan))
            return
        # The view reads thumbnail(THUMB_SIDE) = the pipeline's THUMB_MAX_SIDE; a test checks they agree.
        model, analysis = requests or (self._model_request(), self.analysis_request())
        self.analysis.request_preview(model, analysis, lookup_cache, self.slide_view.thumbnail_array)

    def _overlap_preset_changed(self) -> None:
        self.preview_plan = None
        if self._awaiting_confirm:
            self.request_preview(lookup_cache=False)

    def _dismiss_banner(self) -> None:
        self._awaiting_confirm = False
        self.banner.hide()
        if not self.act_preview.isChecked():
            self.slide_view.set_preview(None)

    def _toggle_preview(self, on: bool) -> None:
        if on:
            if self.preview_plan is not None:  # dropped whenever the region or the settings change
                self.slide_view.set_preview(PlanPreview.from_plan(self.preview_plan))
            else:
                self.request_preview()
        elif not self._awaiting_confirm:
            self.slide_view.set_preview(None)

    # ----- what the slide's jobs say ----------------------------------------------------------------------------
    def _connect_analysis(self) -> None:
        a = self.analysis
        a.preview_ready.connect(self._on_preview_ready)
        a.preview_failed.connect(self._on_preview_failed)
        a.result_adopted.connect(self._on_result_adopted)
        a.result_changed.connect(self.refresh_heatmap)
        a.run_planned.connect(self._on_run_planned)
        a.progress.connect(self.progress.update_progress)
        a.scheduler_ready.connect(self.prioritise_visible_tiles)
        a.ended.connect(self._on_analysis_ended)
        a.background_progress.connect(self._on_background_progress)
        a.background_ended.connect(self._on_background_ended)

    def _on_preview_ready(self, ready: PlanReady) -> None:
        if self.act_preview.isChecked() or self._awaiting_confirm:
            self.slide_view.set_preview(PlanPreview.from_plan(ready.plan))
        if self._awaiting_confirm:
            self.banner.describe(ready, in_region=self.roi is not None)
            self.banner.offer_fast_mode(self._fast_mode_worth_offering(), self.analysis.seconds_per_tile,
                                        ready.plan.n_tiles)
            self.banner.set_estimate(self.analysis.seconds_per_tile, ready.plan.n_tiles)

    def _on_preview_failed(self, message: str, details: str) -> None:
        if self._awaiting_confirm:
            self._dismiss_banner()
        if message:  # empty: an export or an evaluation took the worker
            self.report_error("Cannot preview the analysis", message, details)

    def _on_result_adopted(self, stored: bool) -> None:
        """A result is the session's now (a stored one, or a new run's): a heatmap layer for it."""
        plan, r = self.plan, self.result
        assert plan is not None and r is not None
        self._use_classes(plan.provenance.class_names, plan.provenance.class_colors)
        self.heatmap.show(plan, self.style_)
        self.inspector.clear()
        self.slide_view.set_selected_tile(None)
        self.refresh_heatmap()
        if stored:
            note, self._background_note = self._background_note, ""
            self.statusBar().showMessage(
                ("Showing the stored analysis of this slide (same model and settings)." if r.complete else
                 f"A previous analysis stopped after {r.n_done} of {r.n_tiles} tiles; Analyze resumes it.")
                + (f" {note}" if note else ""), 20000)

    def _on_run_planned(self, ready: PlanReady) -> None:
        plan = ready.plan
        if self.act_preview.isChecked():
            self.slide_view.set_preview(PlanPreview.from_plan(plan))
        self.progress.set_total(plan.n_tiles, int(np.count_nonzero(ready.status != TILE_PENDING)))
        if plan.n_tiles == 0:
            self.statusBar().showMessage("No tissue tiles to analyse: lower the tissue threshold in Settings, "
                                         "or draw a region over tissue.", 10000)
        else:
            self.statusBar().showMessage(f"Analysing {plan.n_tiles:,} tiles of {plan.provenance.tile_um:.0f} \u00b5m"
                                         f" at pyramid level {plan.grid.level}\u2026")

    def _on_analysis_ended(self, how: str, message: str, details: str) -> None:
        self.refresh_heatmap()
        self.progress.finish()
        self._update_actions()
        if how in (ENDED_DONE, ENDED_CANCELLED):
            self.statusBar().showMessage(message, 15000)
        elif how == ENDED_FAILED:
            self.report_error("Analysis failed", message, details)
        elif how == ENDED_MODEL_MISSING:
            self._model_missing(message)
        elif how == ENDED_OUT_OF_DOMAIN:
            self.statusBar().showMessage("Not analysed: the model cannot judge this slide.", 15000)
            if not self.interactive:
                self.report_error("Outside the model's domain",
                                  f"{message} To analyse it anyway, use --allow-out-of-domain.")
            else:
                self.out_of_domain_dialog = ask_out_of_domain(
                    self, message, functools.partial(self._analyse_anyway, self.session))
        elif how == ENDED_NO_TILES:
            self.statusBar().showMessage(f"Nothing to analyse: {message}", 15000)
            self.report_error("Nothing to analyse", message)
        self.analysis_finished.emit(how)

    def _analyse_anyway(self, session: SlideSession) -> None:
        if session is self.session:
            session.out_of_domain_allowed = True
            self.run_analysis()

    def _on_background_progress(self, path: str, done: int, total: int, elapsed: float) -> None:
        """A run kept going for another slide shows in the progress bar while nothing else does."""
        if self.user_job_running(foreground=True):
            return
        if not self.progress.isVisibleTo(self):
            self.progress.start(f"{Path(path).name} (background)", "tiles")
        self.progress.update_progress(done, total, elapsed)

    def _on_background_ended(self, path: str, outcome: str) -> None:
        if not self.user_job_running(foreground=True):
            self.progress.finish()
        what = {"done": "finished: its result is stored", "cancelled": "was cancelled: its finished tiles are kept"
                }.get(outcome, f"ended ({outcome})")
        # Kept until a result is shown, which would otherwise overwrite it at once.
        self._background_note = f"The analysis of {Path(path).name} in the background {what}."
        self.statusBar().showMessage(self._background_note, 30000)
        self._update_actions()

    def _cohort_model_missing(self, message: str) -> None:
        self._pending_after_model = "cohort"  # Analyze All again once a model is chosen
        self.raise_()  # the model dialog opens over this window, which may be behind the cohort's
        self.activateWindow()
        self._model_missing(message)

    def _model_missing(self, message: str) -> None:
        self.statusBar().showMessage("The model is not on this computer yet.", 10000)  # not "Loading..."
        if self.interactive:
            self.show_model_dialog(message, missing=True)
        else:
            self.report_error("Model not available", message)

    # ----- patches ------------------------------------------------------------------------------------------------
    def classify_patches(self) -> None:
        if self.gallery.paths:
            self.patches.start(self._model_request(), self.settings.get("analysis/workers"))
            self._pending_after_model = "patches"
            self._update_actions()

    def _on_patches_ended(self, how: str, message: str, details: str) -> None:
        self._update_actions()
        if how == ENDED_FAILED:
            self.report_error("Analysis failed", message, details)
        elif how != ENDED_MODEL_MISSING:
            self.statusBar().showMessage(message, 10000)
        self.analysis_finished.emit(how)
        if how == ENDED_MODEL_MISSING:
            self._model_missing(message)

    # ----- model and device ---------------------------------------------------------------------------------------
    def _fast_mode_worth_offering(self) -> bool:
        """The CPU has bf16 hardware and the model would run in fp32 there."""
        info = self._device_info
        return bool(info is not None and info.fast_cpu_mode and not info.is_gpu
                    and self._model_request().precision in ("auto", "fp32"))

    def use_fast_cpu_mode(self) -> None:
        """Switch the CPU to bf16 (Settings' precision), from the preview banner's offer."""
        self.settings.set("engine/precision", "bf16")
        self._settings_applied()
        self.banner.offer_fast_mode(False)
        self.statusBar().showMessage("Fast CPU mode (bf16) on: it applies to this analysis. Settings \u25b8 "
                                     "Inference \u25b8 Precision switches it back.", 10000)

    def _on_device(self, info: DeviceInfo) -> None:
        self._device_info = info
        warning = info.note if (info.fell_back or not info.is_gpu) else ""
        self.device_label.set_device(info.description, warning, info.precision)
        if info.fell_back:
            self.statusBar().showMessage(f"Running on the CPU: {info.note}", 10000)

    def _on_model_ready(self, profile: ModelProfile) -> None:
        self.profile = profile
        from chaoyang_desktop.core.model.temperature import temperature_of

        request = self._model_request()
        self.device_label.set_model(profile.model_id, profile.source, profile.weights_sha256,
                                    temperature_of(request.calibration), request.tta)
        self._use_classes(profile.class_names, profile.class_colors)

    def _use_classes(self, names: tuple[str, ...], default_colors: tuple[str, ...]) -> None:
        """A model with other classes than shown: new legend rows, keeping the other controls."""
        if names == self.style_.class_names:
            return
        colors = self.settings.class_colors(tuple(names), tuple(default_colors))
        self.annotation_ctl.set_model_classes(tuple(names), tuple(colors))
        self.overlay_panel.set_style(OverlayStyle.for_classes(tuple(names), colors).replace(
            opacity=self.style_.opacity, alpha_by_confidence=self.style_.alpha_by_confidence,
            min_confidence=self.style_.min_confidence, show=self.style_.show))

    def show_model_dialog(self, message: str, missing: bool = False) -> None:
        from chaoyang_desktop.gui.model_dialog import ModelDialog

        repo = self._model_request().spec or None
        from chaoyang_desktop.core.model.model_source import looks_like_repo_id
        from chaoyang_desktop.core.model.profile import DEFAULT_MODEL_ID

        current = None
        if self.profile is not None:
            current = self.profile.model_id  # loaded and working: the dialog offers a change
        dialog = ModelDialog(self.host, message, repo if repo and looks_like_repo_id(repo) else DEFAULT_MODEL_ID, self,
                             current=current if not missing else None)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.model_chosen.connect(self._on_model_chosen)
        self.model_dialog = dialog
        dialog.open()

    def _on_model_chosen(self, spec: str) -> None:
        from chaoyang_desktop.core.model.profile import DEFAULT_MODEL_ID

        self._model_spec = None if spec == DEFAULT_MODEL_ID else spec
        self.settings.set("model/spec", "" if spec == DEFAULT_MODEL_ID else spec)
        self._model_request_override = None
        self.statusBar().showMessage(f"Model: {spec}", 8000)
        again = self._pending_after_model
        if again == "slide" and self.slide is not None:
            self.analyze()  # through the preview (when it is on), never straight into a run
        elif again == "patches" and self.stack.currentIndex() == PAGE_GALLERY:
            self.classify_patches()
        elif again == "evaluate":
            self.evaluator.retry()
        elif again == "cohort" and self.cohort_window is not None:
            self.cohort_window.analyze_all()

    # ----- live heatmap --------------------------------------------------------------------------------------------
    def refresh_heatmap(self) -> None:
        """Redraw the heatmap and the summary from the mirrored result (coalesced by the analysis)."""
        r = self.result
        if r is None:
            return
        s = self.session
        took_ms = self.heatmap.refresh(r, self.style_, self.analysis.running, s.compositions() if s else [])
        # Huge slides with overlapping tiles take longer to summarise: then refresh less often, so
        # the GUI thread stays mostly idle (at most a fifth of its time goes here).
        self.analysis.pace_refresh(max(REFRESH_MS, min(5000, round(5 * took_ms))))
        self.heatmap_refreshed.emit()

    def _on_style_changed(self, style: OverlayStyle) -> None:
        self.style_ = self.inspection.style = style
        self.act_heatmap.blockSignals(True)
        self.act_heatmap.setChecked(style.show)
        self.act_heatmap.blockSignals(False)
        self.settings.set("overlay/opacity", style.opacity)
        self.settings.set("overlay/alpha_by_confidence", style.alpha_by_confidence)
        self.settings.set("overlay/min_confidence", style.min_confidence)
        self.heatmap.restyle(style)
        self.gallery.set_classes(style.class_names, style.class_colors)
        self.inspector.set_classes(style.class_names, style.class_colors)

    # ----- tiles in view first -----------------------------------------------------------------------------------
    def _on_view_changed(self) -> None:
        if self.scheduler is not None and not self._prioritise_timer.isActive():
            self._prioritise_timer.start()
        self._update_minimap_visibility()

    def visible_pending_tiles(self) -> np.ndarray:
        """Indices of pending tiles that intersect the view, nearest to its centre first."""
        return self.analysis.visible_pending_tiles(self.slide_view.state.visible_l0_rect())

    def prioritise_visible_tiles(self) -> None:
        self.analysis.prioritise(self.slide_view.state.visible_l0_rect())

    # ----- regions and annotations ------------------------------------------------------------------------------
    def set_roi_points(self, points: np.ndarray) -> None:
        """Draw a rectangle (two corners) or a polygon annotation as the tools do; Analyze then runs on it."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.annotation_ctl.draw("rectangle" if len(pts) == 2 else "polygon", pts)

    def set_target(self, roi: Roi) -> None:
        """Make a region what Analyze runs on and the preview shows; the analysis shown stays until then."""
        self.roi = roi
        self.slide_view.set_roi([p.exterior for p in roi.polygons])
        self.preview_plan = None
        if self.act_preview.isChecked():
            self.request_preview()
        self._update_actions()

    def _target_selection(self) -> None:
        """Analyze runs on the selected annotations, when there are any."""
        region = self.annotation_ctl.selection_region()
        if region is not None and (self.roi is None or region.digest() != self.roi.digest()):
            self.set_target(region)

    def _on_annotations_changed(self) -> None:
        s = self.session
        self.summary_panel.set_compositions(s.compositions() if s is not None else [])
        if s is not None and not self.analysis.running and s.drop_unanalysed_target():
            self.slide_view.set_roi([])
            self._refresh_analyses_panel()
        self._update_actions()

    def clear_roi(self) -> None:
        """Back to the whole slide: its stored analysis comes back, a region's heatmap goes."""
        self.annotation_ctl.select(())
        self.roi = None
        self.slide_view.set_roi([])
        self.preview_plan = None
        showing_region = self.result is not None and self.result.provenance.roi_digest is not None
        if showing_region and not self.analysis.running:
            # A region-only heatmap without its outline would look like a partial analysis.
            self._show_no_result()
            self.request_preview(lookup_cache=True)  # the whole slide's stored analysis, if any
        elif self.act_preview.isChecked():
            self.request_preview()
        self._refresh_analyses_panel()
        self._update_actions()

    def show_analysis_of(self, roi: Roi | None) -> None:
        """Show the analysis of the whole slide (None) or of a region drawn on it, stored or not yet run."""
        if self.analysis.running:
            self.statusBar().showMessage("An analysis is running: wait for it, or cancel it, to switch.", 8000)
            self._refresh_analyses_panel()
            return
        if roi is None:
            self.clear_roi()  # shows the whole slide's stored analysis in place of a region's
            if self.result is None:
                self.request_preview(lookup_cache=True)
            return
        self.roi = roi
        self.slide_view.set_roi([p.exterior for p in roi.polygons])
        self.preview_plan = None
        self._show_no_result()
        self.request_preview(lookup_cache=True)  # its stored analysis, if it was made before
        self._refresh_analyses_panel()
        self._update_actions()

    def _refresh_analyses_panel(self) -> None:
        regions = self.session.regions if self.session is not None else []
        mpp = self.slide.mpp if self.slide is not None else None
        self.analyses_panel.set_entries(regions, (mpp / 1000.0) ** 2 if mpp else None, self.roi)

    def _show_no_result(self) -> None:
        self.plan = self.result = None
        self.heatmap.clear()
        self.inspector.clear()

    # ----- inspection ----------------------------------------------------------------------------------------------
    def inspect_at(self, l0_x: float, l0_y: float) -> None:
        self.inspection.inspect_at(l0_x, l0_y)

    def _on_tile_shown(self) -> None:
        self.inspector_dock.show()
        if not self.annotations_panel.isVisible():  # a click that selects an annotation keeps its panel up
            self.inspector_dock.raise_()

    # ----- slide properties -------------------------------------------------------------------------------------------
    def _on_mpp_override(self, mpp: float | None) -> None:
        if self.slide_path is None:
            return
        path = self.slide_path
        self._cli_mpp = None
        self.open_slide_file(path, mpp=mpp)
        self.properties_dock.show()
        self.properties_dock.raise_()

    # ===== misc ====================================================================================================
    def _set_minimap(self, on: bool) -> None:
        self._update_minimap_visibility()

    def _update_minimap_visibility(self) -> None:
        """The minimap only helps when part of the slide is off screen."""
        st = self.slide_view.state
        x0, y0, x1, y1 = st.visible_l0_rect()
        whole = x0 <= 0 and y0 <= 0 and x1 >= st.l0_width and y1 >= st.l0_height
        show = self.act_minimap.isChecked() and self.slide is not None and not whole \
            and self.slide_view.thumbnail_array is not None
        self.slide_view.minimap.setVisible(show)

    def _update_actions(self) -> None:
        has_slide = self.slide is not None and self.stack.currentIndex() == PAGE_SLIDE
        in_gallery = self.stack.currentIndex() == PAGE_GALLERY
        running = self.user_job_running()
        for act in (self.act_fit, self.act_one, self.act_zoom_in, self.act_zoom_out, self.act_preview,
                    self.act_reanalyze):
            act.setEnabled(has_slide)
        self.act_analyze.setEnabled(has_slide or in_gallery)
        self.act_analyze.setText("&Classify Patches" if in_gallery else "&Analyze")
        self.act_analyze.setIconText("Classify" if in_gallery else "Analyze")
        self.act_clear_roi.setEnabled(has_slide and (self.roi is not None or bool(self.session and self.session.selected)))
        self.annotation_ctl.update_actions()
        self.act_cancel.setEnabled(running)
        self.act_close.setEnabled(self.slide is not None or in_gallery)
        self.exporter.update_actions()
        self.evaluator.update_actions()
        self._update_minimap_visibility()

    def _stop_background_jobs(self) -> None:
        for handle in self.host.running_jobs():
            if handle.waited_for:  # a cohort's slides yield, and the cohort window stops its own
                handle.background = False
                handle.cancel()

    def user_job_running(self, foreground: bool = False) -> bool:
        """An analysis, a patch classification, an export or an evaluation holds the worker.

        Exports and evaluations wait for these rather than replacing them (the worker runs one job
        at a time, and a new job cancels the current one).
        """
        # A cohort's slides are not the user's: they step aside for the user's jobs, and the cohort
        # sends its next slide only when the worker has nothing of the user's to do.
        background = not foreground and any(h.waited_for for h in self.host.running_jobs())
        return bool(self.analysis.running or self.patches.running or background or self.exporter.running
                    or self.evaluator.running)

    def report_error(self, title: str, message: str, details: str = "", parent: QWidget | None = None) -> None:
        """Show the engine's message in a dialog over ``parent`` (this window), or only record it in scripted mode."""
        self.last_error = message
        if self.interactive:
            show_error(parent or self, title, message, details)
        else:
            log.error("%s: %s", title, message)
        self.error_shown.emit(message)

    def open_settings(self) -> None:
        from chaoyang_desktop.gui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self.style_.class_names, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(self._settings_applied)
        self.settings_dialog = dialog
        dialog.open()

    def show_display_adjust(self) -> None:
        """Brightness, contrast and gamma of the slide layer (non-modal, as in QuPath)."""
        from chaoyang_desktop.gui.display_adjust import DisplayAdjustDialog

        if self.display_adjust_dialog is None:
            dialog = DisplayAdjustDialog(self.slide_view.display_adjustment, self)
            dialog.adjustment_changed.connect(self.slide_view.set_display_adjustment)
            self.display_adjust_dialog = dialog
        self.display_adjust_dialog.show()
        self.display_adjust_dialog.raise_()

    def use_calibration(self, path: str) -> None:
        """Calibrate the next analyses with this temperature file (from the evaluation's fit)."""
        self.settings.set("engine/calibration", path)
        self._settings_applied()
        self.statusBar().showMessage(f"Calibration {Path(path).name} applies to the next analysis.", 10000)

    def _settings_applied(self) -> None:
        names = self.style_.class_names
        defaults = self.profile.class_colors if self.profile is not None else default_colors(names)
        colors = self.settings.class_colors(names, defaults)
        self._model_spec = self._model_spec if self._model_request_override else None
        self.overlay_panel.set_style(self.style_.replace(class_colors=colors))
        self.preview_plan = None
        if self.act_preview.isChecked():
            self.request_preview()
        self.host.probe_device(self._model_request().device)
        self.cohort.settings_changed()
        self.statusBar().showMessage("Settings saved. They apply to the next analysis.", 8000)

    def show_about(self) -> None:
        show_about(self, RESEARCH_NOTICE)

    def open_log_folder(self) -> None:
        open_log_folder()

    # ===== lifetime ===================================================================================================
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Cancel the running job, stop the worker and the readers, then close; never hangs on a batch.

        During an analysis the user is asked first; the window closes once they agree.
        """
        if self._ask_before_leaving_run(self.close, action="Quit"):
            event.ignore()
            return
        self.settings.set_window_state(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.analysis.leave()
        self._prioritise_timer.stop()
        self.hide()  # the window goes away at once; the worker may finish its current batch
        self.cohort.shutdown()
        if self.cohort_window is not None:
            self.cohort_window.hide()
        self.host.shutdown()
        self.slide_view.loader.shutdown()
        self.gallery.shutdown()
        self.annotation_ctl.set_session(None)
        if self.session is not None:
            self.session.close()  # its slide's file handles; the finished tiles stay readable
        event.accept()

    def restore_layout(self) -> None:
        geometry, state = self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        for dock in self._slide_docks:
            dock.hide()
        self.slides_dock.hide()

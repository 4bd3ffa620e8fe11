"""The main window's widgets and their layout, built the way Qt Designer's ``setupUi`` would be.

Only construction lives here: pages, docks, menus, toolbar and status bar, set as attributes of
the window. What they do is wired in :mod:`chaoyang_desktop.gui.main_window`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.gui.actions import make_action
from chaoyang_desktop.gui.analyses_panel import AnalysesPanel
from chaoyang_desktop.gui.annotations_panel import AnnotationsPanel
from chaoyang_desktop.gui.associated_images import close_associated_images, show_associated_image
from chaoyang_desktop.gui.confirm_banner import ConfirmBanner
from chaoyang_desktop.gui.gallery import PatchGallery
from chaoyang_desktop.gui.help_dialogs import show_shortcuts, show_user_guide
from chaoyang_desktop.gui.inspector import Inspector
from chaoyang_desktop.gui.job_status import DeviceLabel, JobProgress
from chaoyang_desktop.gui.overlay_panel import OverlayPanel
from chaoyang_desktop.gui.properties_panel import PropertiesPanel
from chaoyang_desktop.gui.slide_list import SlideList
from chaoyang_desktop.gui.slide_view import SlideView
from chaoyang_desktop.gui.summary_panel import SummaryPanel
from chaoyang_desktop.gui.view_state import (
    MAGNIFICATION_PRESETS,
    MAX_DIGITAL_ZOOM,
    magnification_reachable,
    magnification_scale,
    native_magnification,
)
from chaoyang_desktop.gui.welcome import WelcomePage

if TYPE_CHECKING:
    from chaoyang_desktop.gui.annotation_controller import AnnotationController
    from chaoyang_desktop.gui.main_window import MainWindow


def sample_slide() -> Path | None:
    """The bundled sample slide, or None when this installation lacks it."""
    from chaoyang_desktop.resources import sample_slide_path

    try:
        path = sample_slide_path()
    except FileNotFoundError:
        return None
    return path if path.is_file() else None


def build_pages(w: MainWindow) -> None:
    """The central stack: start page, slide page (confirm banner over the slide view), gallery."""
    w.stack = QStackedWidget()
    w.welcome = WelcomePage()
    w.slide_view = SlideView()
    w.gallery = PatchGallery()
    slide_page = QWidget()
    v = QVBoxLayout(slide_page)
    v.setContentsMargins(0, 0, 0, 0)
    v.setSpacing(0)
    w.banner = ConfirmBanner()
    v.addWidget(w.banner)
    v.addWidget(w.slide_view, 1)
    w.stack.addWidget(w.welcome)
    w.stack.addWidget(slide_page)
    w.stack.addWidget(w.gallery)
    w.setCentralWidget(w.stack)


def make_dock(w: MainWindow, title: str, widget: QWidget, name: str, scroll: bool = True) -> QDockWidget:
    """A movable, closable dock; ``scroll`` puts the panel in a scroll area."""
    dock = QDockWidget(title, w)
    dock.setObjectName(name)
    if scroll:
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setWidget(widget)
        dock.setWidget(area)
    else:
        dock.setWidget(widget)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                     | QDockWidget.DockWidgetFeature.DockWidgetClosable
                     | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
    return dock


def build_docks(w: MainWindow) -> None:
    """The panels and their docks: overlay, summary, then inspector, properties, analyses and annotations tabbed."""
    w.overlay_panel = OverlayPanel(w.style_)
    w.summary_panel = SummaryPanel()
    w.inspector = Inspector()
    w.properties_panel = PropertiesPanel()
    w.slide_list = SlideList()
    w.analyses_panel = AnalysesPanel()
    w.annotations_panel = AnnotationsPanel()
    for panel in (w.overlay_panel, w.summary_panel):
        panel.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
    w.overlay_dock = make_dock(w, "Overlay", w.overlay_panel, "overlay_dock", scroll=False)
    w.summary_dock = make_dock(w, "Summary", w.summary_panel, "summary_dock", scroll=False)
    w.inspector_dock = make_dock(w, "Inspector", w.inspector, "inspector_dock")
    w.properties_dock = make_dock(w, "Slide properties", w.properties_panel, "properties_dock")
    w.analyses_dock = make_dock(w, "Analyses", w.analyses_panel, "analyses_dock", scroll=False)
    w.annotations_dock = make_dock(w, "Annotations", w.annotations_panel, "annotations_dock")
    w.slides_dock = make_dock(w, "Slides", w.slide_list, "slides_dock", scroll=False)
    right = Qt.DockWidgetArea.RightDockWidgetArea
    w.addDockWidget(right, w.overlay_dock)
    w.addDockWidget(right, w.summary_dock)
    w.addDockWidget(right, w.inspector_dock)
    w.tabifyDockWidget(w.inspector_dock, w.properties_dock)
    w.tabifyDockWidget(w.inspector_dock, w.analyses_dock)
    w.tabifyDockWidget(w.inspector_dock, w.annotations_dock)
    w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, w.slides_dock)
    w.slides_dock.hide()
    w.inspector_dock.raise_()
    w.resizeDocks([w.overlay_dock], [380], Qt.Orientation.Horizontal)
    w._slide_docks = (w.overlay_dock, w.summary_dock, w.inspector_dock, w.properties_dock,
                         w.analyses_dock, w.annotations_dock)
    for dock in w._slide_docks:
        dock.hide()


def build_actions(w: MainWindow, ctl: AnnotationController) -> None:
    """The window's own actions (the annotation tools are the controller's), with their slots."""
    def a(text: str, slot: Callable[..., object] | None = None, shortcut: Any = None, checkable: bool = False,
          tip: str = "") -> QAction:
        return make_action(w, text, slot, shortcut, checkable, tip)

    w.act_open = a("&Open\u2026", w.open_file_dialog, QKeySequence.StandardKey.Open,
                      tip="Open a slide, an image or patches")
    w.act_open_folder = a("Open &Folder\u2026", w.open_folder_dialog, "Ctrl+Shift+O",
                             tip="Open a folder of slides or of patches")
    # Ctrl+Shift+O is Open Folder's; L for the list of slides the cohort window is.
    w.act_open_cohort = a("Open Cohor&t\u2026", w.open_cohort_dialog, "Ctrl+Shift+L",
                          tip="Open a folder of slides in the cohort window, to analyse them all in one run")
    w.act_cohort = a("&Cohort Window", lambda: w.show_cohort(), tip="The cohort window: every slide of the opened folder")
    w.act_cohort.setEnabled(False)  # until a folder of slides is opened
    w.act_close = a("&Close", w.close_current, QKeySequence.StandardKey.Close)
    w.act_quit = a("&Quit", w.close, QKeySequence.StandardKey.Quit)
    w.act_fit = a("&Fit to Window", w.slide_view.fit, ["F", "Ctrl+0"], tip="Show the whole slide (F)")
    # Ctrl+1 is the first magnification preset (Ctrl+1..6), so 1:1 keeps the plain 1 key.
    w.act_one = a("&1:1 (Full Resolution)", w.slide_view.one_to_one, "1",
                     tip="One screen pixel per slide pixel (1)")
    w.act_zoom_in = a("Zoom &In", w.slide_view.zoom_in, ["+", "=", QKeySequence.StandardKey.ZoomIn],
                         tip="Zoom in (+)")
    w.act_zoom_out = a("Zoom &Out", w.slide_view.zoom_out, ["-", QKeySequence.StandardKey.ZoomOut],
                          tip="Zoom out (\u2212)")
    w.act_heatmap = a("Show &Heatmap", lambda v: w.overlay_panel.show_check.setChecked(v), "H",
                         checkable=True, tip="Show or hide the heatmap (H)")
    w.act_heatmap.setChecked(True)
    w.act_minimap = a("&Minimap", w._set_minimap, "M", checkable=True, tip="Overview of the slide (M)")
    w.act_display_adjust = a("&Brightness && Contrast\u2026", w.show_display_adjust, "Shift+C",
                             tip="Brightness, contrast and gamma of the slide on screen (the analysis is unchanged)")
    w.act_minimap.setChecked(True)
    # As on a microscope's nosepiece; Ctrl+digit, because a plain digit would also fire while a
    # combo box or list has the focus (line edits and spin boxes keep their digits either way).
    w.act_magnifications = {}
    for i, mag in enumerate(MAGNIFICATION_PRESETS, start=1):
        w.act_magnifications[mag] = a(f"{mag:g}\u00d7", lambda _=False, m=mag: go_to_magnification(w, m),
                                      f"Ctrl+{i}", tip=f"Show the slide as a {mag:g}\u00d7 objective would (Ctrl+{i})")
    w.act_label_image = a("&Label Image", lambda: show_associated_image(w, w.slide, "label"),
                          tip="The slide's label, as the scanner photographed it")
    w.act_macro_image = a("M&acro Image", lambda: show_associated_image(w, w.slide, "macro"),
                          tip="The scanner's overview photograph of the whole glass slide")
    w.act_analyze = a("&Analyze", lambda: w.analyze(), "Ctrl+R",
                         tip="Classify the tissue of the slide, or of the region drawn (Ctrl+R)")
    w.act_reanalyze = a("Analyze Again from Scratch", lambda: w.run_analysis(fresh=True),
                           tip="Classify every tile again instead of reusing the stored result")
    w.act_cancel = a("&Cancel Analysis", w.cancel_job, "Ctrl+.", tip="Stop the running job (Ctrl+.)")
    w.act_clear_roi = a("C&lear Region", w.clear_roi,
                           tip="Deselect the annotations and show the whole slide's analysis")
    w.act_preview = a("&Preview Tissue and Tiles", w._toggle_preview, "T", checkable=True,
                         tip="Show the tissue mask and the tiles an analysis would classify (T)")
    # Ctrl+, everywhere: the platform "Preferences" key is empty on Linux and Windows.
    w.act_settings = a("&Settings\u2026", w.open_settings, "Ctrl+,")
    w.act_model = a("Choose &Model\u2026", lambda: w.show_model_dialog("Choose where the model comes from."))
    w.act_sample = a("Open &Sample Slide", w.open_sample_slide,
                        tip="Open the bundled sample slide (CMU-1 small region, H&E, CC0)")
    w.act_sample.setEnabled(sample_slide() is not None)
    w.act_about = a("&About Chaoyang Desktop", w.show_about)
    w.act_logs = a("Open &Log Folder", w.open_log_folder)
    w.act_user_guide = a("&User Guide", lambda: show_user_guide(w), QKeySequence.StandardKey.HelpContents,
                         tip="Opening, analysing, overlays, annotations, exports and evaluation, in short")
    w.act_shortcuts = a("&Keyboard Shortcuts", lambda: show_shortcuts(w), "Ctrl+/",
                        tip="Every command that has keys (Ctrl+/)")
    w.act_settings.setMenuRole(QAction.MenuRole.PreferencesRole)
    w.act_about.setMenuRole(QAction.MenuRole.AboutRole)
    w.act_quit.setMenuRole(QAction.MenuRole.QuitRole)
    # Short labels on the toolbar (icon text); the menus keep the full names.
    for act, label in ((w.act_open, "Open"), (w.act_open_folder, "Open Folder"), (w.act_fit, "Fit"),
                       (w.act_one, "1:1"), (w.act_zoom_in, "Zoom +"), (w.act_zoom_out, "Zoom \u2212"),
                       (w.act_analyze, "Analyze"), (w.act_preview, "Preview"), (w.act_cancel, "Cancel"),
                       (ctl.act_freehand, "Freehand"), (ctl.act_ruler, "Ruler")):
        act.setIconText(label)


def build_menus(w: MainWindow, ctl: AnnotationController) -> None:
    """The menu bar and the toolbar, from the window's actions."""
    mb = w.menuBar()
    m = mb.addMenu("&File")
    m.addAction(w.act_open)
    m.addAction(w.act_open_folder)
    m.addAction(w.act_open_cohort)
    w.recent_menu = m.addMenu("Open &Recent")
    m.addSeparator()
    for act in w.exporter.actions:
        m.addAction(act)
    m.addSeparator()
    m.addAction(ctl.act_import)
    m.addAction(ctl.act_export)
    m.addSeparator()
    m.addAction(w.act_close)
    m.addAction(w.act_quit)
    m = mb.addMenu("&Edit")
    for act in (ctl.act_undo, ctl.act_redo, None, ctl.act_delete, ctl.act_select_none):
        m.addSeparator() if act is None else m.addAction(act)
    m = mb.addMenu("&View")
    for act in (w.act_fit, w.act_one, w.act_zoom_in, w.act_zoom_out):
        m.addAction(act)
    w.magnification_menu = m.addMenu("Ma&gnification")
    for act in w.act_magnifications.values():
        w.magnification_menu.addAction(act)
    m.addSeparator()
    m.addAction(w.act_heatmap)
    m.addAction(w.act_minimap)
    m.addAction(w.act_display_adjust)
    m.addSeparator()
    m.addAction(w.act_label_image)
    m.addAction(w.act_macro_image)
    m.addSeparator()
    for dock in (w.overlay_dock, w.summary_dock, w.inspector_dock, w.properties_dock,
                 w.analyses_dock, w.annotations_dock, w.slides_dock):
        m.addAction(dock.toggleViewAction())
    m.addAction(w.act_cohort)
    m = mb.addMenu("&Analysis")
    for act in (w.act_analyze, w.act_reanalyze, w.act_cancel):
        m.addAction(act)
    m.addSeparator()
    m.addAction(w.act_preview)
    m.addAction(w.act_clear_roi)
    m.addSeparator()
    m.addAction(w.evaluator.act_evaluate)
    m = mb.addMenu("A&nnotate")
    for act in ctl.tool_actions.values():
        m.addAction(act)
    m.addAction(ctl.act_clear_ruler)
    m = mb.addMenu("&Settings")
    m.addAction(w.act_settings)
    m.addAction(w.act_model)
    m = mb.addMenu("&Help")
    m.addAction(w.act_user_guide)
    m.addAction(w.act_shortcuts)
    m.addSeparator()
    m.addAction(w.act_sample)
    m.addSeparator()
    m.addAction(w.act_about)
    m.addAction(w.act_logs)

    tb = w.addToolBar("Main")
    tb.setObjectName("main_toolbar")
    tb.setMovable(False)
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    for act in (w.act_open, w.act_open_folder):
        tb.addAction(act)
    tb.addSeparator()
    for act in (w.act_fit, w.act_one, w.act_zoom_in, w.act_zoom_out):
        tb.addAction(act)
    tb.addSeparator()
    for act in (w.act_analyze, w.act_preview, w.act_cancel):
        tb.addAction(act)
    tb.addSeparator()
    for act in ctl.tool_actions.values():
        tb.addAction(act)
    w.toolbar = tb
    connect_viewing_tools(w)


def build_status_bar(w: MainWindow) -> None:
    """Permanent widgets: export folder button, cursor position, job progress, device."""
    sb = w.statusBar()
    w.cursor_label = QLabel()
    w.cursor_label.setMinimumWidth(230)
    w.progress = JobProgress()
    w.device_label = DeviceLabel()
    w.cohort_label = QLabel()  # the cohort's pace while it runs
    w.cohort_label.hide()
    sb.addPermanentWidget(w.cohort_label)
    sb.addPermanentWidget(w.exporter.open_folder_button)
    sb.addPermanentWidget(w.cursor_label)
    sb.addPermanentWidget(w.progress)
    sb.addPermanentWidget(w.device_label)


# ----- the viewing tools: magnification presets, label and macro, image type ---------------------------
def connect_viewing_tools(w: MainWindow) -> None:
    """Keep the viewing tools in step with the open slide and its analysis plans.

    They follow signals the window has anyway (a slide opened; the page changed, as when the slide
    closes or the gallery opens; a plan arrived), so the window needs no code of its own for them.
    """
    w.slide_opened.connect(lambda _path: update_viewing_actions(w))
    w.stack.currentChanged.connect(lambda _page: update_viewing_actions(w))
    w.analysis.preview_ready.connect(w.properties_panel.show_plan)
    w.analysis.run_planned.connect(w.properties_panel.show_plan)
    update_viewing_actions(w)


def update_viewing_actions(w: MainWindow) -> None:
    """Enable what the open slide has: its label and macro images, and the magnifications it reaches."""
    slide = w.slide
    names = slide.associated_image_names if slide is not None else ()
    w.act_label_image.setEnabled("label" in names)
    w.act_macro_image.setEnabled("macro" in names)
    native, estimated = native_magnification(slide.objective_power, slide.mpp) if slide is not None else (None, True)
    w.magnification_menu.setEnabled(native is not None)
    for i, (mag, act) in enumerate(w.act_magnifications.items(), start=1):
        act.setEnabled(magnification_reachable(mag, native))
        if native is None:
            tip = "The slide gives neither its objective nor its pixel size."
        elif act.isEnabled():
            tip = f"Show the slide as a {mag:g}\u00d7 objective would (Ctrl+{i})"
        else:
            approx = "\u2248 " if estimated else ""
            tip = (f"Beyond {MAX_DIGITAL_ZOOM:g}\u00d7 the scan's {approx}{native:.3g}\u00d7: "
                   "enlarging further shows no more detail.")
        act.setToolTip(tip)
        act.setStatusTip(tip)
    close_associated_images(w, str(slide.path) if slide is not None else None)


def go_to_magnification(w: MainWindow, magnification: float) -> None:
    """Zoom the view, about its centre, to ``magnification`` relative to the scan's objective or pixel size."""
    slide = w.slide
    if slide is None:
        return
    native, estimated = native_magnification(slide.objective_power, slide.mpp)
    if native is None or not magnification_reachable(magnification, native):
        return
    state = w.slide_view.state
    state.set_scale(magnification_scale(magnification, native))
    shown = native * state.scale
    if estimated:
        basis = (f"estimated from the pixel size, {slide.mpp:.3g} \u00b5m/px"
                 f"{' (assumed)' if slide.mpp_assumed else ''}, as 0.5 \u00b5m/px is 20\u00d7")
    else:
        basis = f"the scan's objective is {native:g}\u00d7"
    if abs(shown - magnification) > 0.01 * magnification:
        what = f"{shown:.3g}\u00d7, as far out as the view goes"
    else:
        what = f"{magnification:g}\u00d7" + (" (digital zoom)" if state.scale > 1.0 + 1e-9 else "")
    w.statusBar().showMessage(f"Magnification {what}; {basis}.", 8000)

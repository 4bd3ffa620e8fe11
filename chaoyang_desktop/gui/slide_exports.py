"""File > Export: the PDF report, the heatmap picture, and the tiles as GeoJSON or CSV.

The :class:`SlideExporter` owns the four export actions of the main window. Every export takes
the open slide's result, complete or partial (only classified tiles are exported; the report
and the heatmap legend say when the analysis is partial), and runs as an
:class:`~chaoyang_desktop.gui.analysis_worker.ExportJob` on the worker thread with the usual
progress and Cancel, so reading tiles for the report or a large thumbnail never blocks the
window. The one exception is the heatmap of the *current view*: that is what the slide view
paints (``QWidget.grab``), plus the legend when the overlay is on, saved on the GUI thread.

Errors are the writers' own (:class:`~chaoyang_desktop.core.errors.OutputError`: missing or
read-only folder, full disk), shown in a dialog; every writer replaces its file atomically, so
a failed or cancelled export leaves no partial file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QStandardPaths, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QColor, QDesktopServices, QFont, QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QRadioButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.core.analysis.results import TileState
from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.gui.actions import make_action
from chaoyang_desktop.gui.analysis_worker import (
    EXPORT_CSV,
    EXPORT_GEOJSON,
    EXPORT_HEATMAP,
    EXPORT_REPORT,
    STATUS_DONE,
    ExportDone,
    ExportJob,
)
from chaoyang_desktop.gui.colormap import viridis_gradient
from chaoyang_desktop.gui.overlay import MODE_PROBABILITY, OverlayStyle

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.results import AnalysisResult
    from chaoyang_desktop.gui.job_handle import JobHandle
    from chaoyang_desktop.gui.main_window import MainWindow

#: Whole-slide heatmap sizes offered (longest side in pixels); capped at the slide's own size.
HEATMAP_MIN_SIDE = 1024
HEATMAP_MAX_SIDE = 8192
HEATMAP_DEFAULT_SIDE = 2048

#: kind -> (file-name suffix, default name ending, dialog title, file filter, status-bar noun)
_FORMATS: dict[str, tuple[str, str, str, str, str]] = {
    EXPORT_REPORT: (".pdf", "_report.pdf", "Export report", "PDF report (*.pdf)", "Report"),
    EXPORT_HEATMAP: (".png", "_heatmap.png", "Export heatmap image", "PNG image (*.png)", "Heatmap image"),
    EXPORT_GEOJSON: (".geojson", "_tiles.geojson", "Export tiles as GeoJSON",
                     "GeoJSON for QuPath (*.geojson *.json)", "GeoJSON"),
    EXPORT_CSV: (".csv", "_tiles.csv", "Export tiles as CSV", "CSV table (*.csv)", "CSV"),
}

#: How long the "Show in Folder" button stays in the status bar after an export.
OPEN_FOLDER_MS = 20000


def default_export_path(slide_path: str, kind: str) -> str:
    """``<slide folder>/<stem><ending>``; the Documents folder when the slide's folder is read-only
    or is the app's own (the bundled sample slide lives in the install folder)."""
    from chaoyang_desktop.resources import resources_dir

    p = Path(slide_path)
    folder = p.parent
    try:
        in_app = folder.resolve().is_relative_to(resources_dir().resolve())
    except (OSError, ValueError):
        in_app = False
    if in_app or not os.access(folder, os.W_OK):
        docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        folder = Path(docs) if docs and Path(docs).is_dir() else Path.home()
    return str(folder / f"{p.stem}{_FORMATS[kind][1]}")


def with_suffix(path: str, kind: str) -> str:
    """Add the format's suffix when the user typed a name without one."""
    suffix = _FORMATS[kind][0]
    allowed = (".geojson", ".json") if kind == EXPORT_GEOJSON else (suffix,)
    return path if Path(path).suffix.lower() in allowed else path + suffix


# ----- the legend beside a grabbed view -------------------------------------------------------------

def legend_image(style: OverlayStyle, summary: dict[str, Any] | None, complete: bool, font: QFont) -> QImage:
    """The overlay's legend as the view shows it: class colours and shares, or the colour bar."""
    fm = QFontMetrics(font)
    line = fm.height() + 6
    pad = 12
    swatch = fm.height() - 2
    rows: list[tuple[str, str, str]] = []  # (colour, name, value)
    notes: list[str] = []
    if style.mode == MODE_PROBABILITY:
        k = min(max(0, style.prob_class), len(style.class_names) - 1)
        title = f"Probability of {style.class_names[k]}"
    else:
        title = "Predicted class, % of analysed area"
        pct = {c["name"]: c["percent"] for c in (summary or {}).get("classes", [])}
        for name, color, shown in zip(style.class_names, style.class_colors, style.visible):
            if shown:
                rows.append((color, name, f"{pct[name]:.1f} %" if name in pct else ""))
        hidden = [n for n, v in zip(style.class_names, style.visible) if not v]
        if hidden:
            notes.append("Hidden: " + ", ".join(hidden))
    if style.min_confidence > 0:
        notes.append(f"Cells below {100 * style.min_confidence:.0f} % confidence hidden")
    if summary is not None:
        notes.append(f"Analysed area {summary['analysed_area_mm2']:.3f} mm\u00b2")
        if not complete:
            notes.append(f"Partial: {summary['tiles_done']:,} of {summary['tiles_total']:,} tiles done")
    name_w = max((fm.horizontalAdvance(n) for _, n, _ in rows), default=0)
    value_w = max((fm.horizontalAdvance(v) for _, _, v in rows), default=0)
    bar_w = 220
    bold = QFont(font)
    bold.setBold(True)
    width = max([QFontMetrics(bold).horizontalAdvance(title) + 4, swatch + 8 + name_w + 16 + value_w, bar_w if not rows else 0,
                 *(fm.horizontalAdvance(n) for n in notes)]) + 2 * pad
    body_h = len(rows) * line if rows or style.mode != MODE_PROBABILITY else 0
    if style.mode == MODE_PROBABILITY:
        body_h = 14 + 6 + fm.height() + 6
    height = pad + line + body_h + (6 + len(notes) * line if notes else 0) + pad
    img = QImage(width, height, QImage.Format.Format_RGB32)
    img.fill(QColor(255, 255, 255))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    ink = QColor(30, 30, 30)
    p.setPen(ink)
    p.setFont(bold)
    y = pad
    p.drawText(QRectF(pad, y, width - 2 * pad, line), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, title)
    y += line
    p.setFont(font)
    if style.mode == MODE_PROBABILITY:
        bar = QRectF(pad, y + 2, width - 2 * pad, 14)
        p.fillRect(bar, viridis_gradient(bar.left(), bar.right()))
        p.drawRect(bar)
        for frac in (0.0, 0.5, 1.0):
            text = f"{frac * 100:.0f} %"
            tw = fm.horizontalAdvance(text)
            x = bar.left() + frac * bar.width()
            tx = min(max(bar.left(), x - tw / 2), bar.right() - tw)
            p.drawText(QPointF(tx, bar.bottom() + 6 + fm.ascent()), text)
        y += body_h
    else:
        for color, name, value in rows:
            top = y + (line - swatch) / 2
            p.fillRect(QRectF(pad, top, swatch, swatch), QColor(color))
            p.drawRect(QRectF(pad, top, swatch, swatch))
            p.drawText(QRectF(pad + swatch + 8, y, name_w + 4, line),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
            p.drawText(QRectF(width - pad - value_w - 4, y, value_w + 4, line),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, value)
            y += line
    if notes:
        y += 6
        p.setPen(QColor(90, 90, 90))
        for note in notes:
            p.drawText(QRectF(pad, y, width - 2 * pad, line), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       note)
            y += line
    p.end()
    return img


def with_legend(view: QImage, legend: QImage) -> QImage:
    """The view with the legend in a white panel on its right, so it hides no tissue."""
    out = QImage(view.width() + legend.width(), max(view.height(), legend.height()), QImage.Format.Format_RGB32)
    out.fill(QColor(255, 255, 255))
    p = QPainter(out)
    p.drawImage(0, 0, view)
    p.drawImage(view.width(), 0, legend)
    p.end()
    return out


# ----- the heatmap dialog ------------------------------------------------------------------------------

class HeatmapExportDialog(QDialog):
    """Current view (as painted) or the whole slide at a chosen size; with or without legend."""

    def __init__(self, view_size: tuple[int, int], slide_size: tuple[int, int], overlay_on: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("heatmap_export_dialog")
        self.setWindowTitle("Export Heatmap Image")
        layout = QVBoxLayout(self)
        self.current = QRadioButton(f"Current view, as shown ({view_size[0]:,} \u00d7 {view_size[1]:,} px)")
        self.whole = QRadioButton("Whole slide")
        group = QButtonGroup(self)
        group.addButton(self.current)
        group.addButton(self.whole)
        self.whole.setChecked(True)
        layout.addWidget(self.current)
        current_note = QLabel("Exactly what the view paints: zoom, overlay settings, region and scale bar.")
        current_note.setIndent(22)
        current_note.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(current_note)
        layout.addWidget(self.whole)
        longest = max(slide_size)
        self.max_allowed = max(1, min(HEATMAP_MAX_SIDE, longest))
        form = QFormLayout()
        form.setContentsMargins(22, 0, 0, 0)
        self.side = QSpinBox()
        self.side.setRange(min(HEATMAP_MIN_SIDE, self.max_allowed), self.max_allowed)
        self.side.setSingleStep(512)
        self.side.setSuffix(" px")
        self.side.setValue(min(HEATMAP_DEFAULT_SIDE, self.max_allowed))
        self.side.setMaximumWidth(140)
        form.addRow("Longest side:", self.side)
        note = QLabel(f"The slide is {slide_size[0]:,} \u00d7 {slide_size[1]:,} px at full resolution. "
                      "Top-class colours with the view's opacity; hidden classes and probability mode "
                      "apply to the current view only.")
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(placeholder-text);")
        form.addRow(note)
        layout.addLayout(form)
        self.legend = QCheckBox("Add the legend (class colours and shares of the analysed area)")
        self.legend.setChecked(overlay_on)
        layout.addWidget(self.legend)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export\u2026")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.whole.toggled.connect(self.side.setEnabled)
        self.setMinimumWidth(460)

    @property
    def whole_slide(self) -> bool:
        return self.whole.isChecked()


# ----- the controller ------------------------------------------------------------------------------------

class SlideExporter(QObject):
    """The export actions of the main window and their worker jobs."""

    #: kind, status ("done", "cancelled", "failed"), path
    export_finished = Signal(str, str, str)

    @property
    def window(self) -> MainWindow:
        """The main window that owns this (its Qt parent)."""
        return cast("MainWindow", self.parent())

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)  # the window owns this; no reference back, so no cycle to collect
        self._job: JobHandle | None = None
        self._job_kind = ""
        self._partial = False
        self.last_path: str | None = None
        #: Tests and scripts answer the heatmap dialog through this (None: ask the user).
        self.heatmap_choice: tuple[bool, int, bool] | None = None
        self.heatmap_dialog: HeatmapExportDialog | None = None
        def a(text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
            return make_action(window, text, slot, shortcut, tip=tip)

        self.act_report = a("Export &Report (PDF)\u2026", lambda: self.export(EXPORT_REPORT), "Ctrl+Shift+E",
                            tip="A PDF with the overview, the composition, confidence histograms and example tiles")
        self.act_heatmap = a("Export &Heatmap Image\u2026", lambda: self.export(EXPORT_HEATMAP),
                             tip="A PNG of the current view, or of the whole slide at a chosen size")
        self.act_geojson = a("Export Tiles as &GeoJSON\u2026", lambda: self.export(EXPORT_GEOJSON),
                             tip="One polygon per classified tile, for QuPath (drag the file onto the slide)")
        self.act_csv = a("Export Tiles as &CSV\u2026", lambda: self.export(EXPORT_CSV),
                         tip="One row per classified tile: position, probabilities, label, confidence")
        self.actions = (self.act_report, self.act_heatmap, self.act_geojson, self.act_csv)
        self.open_folder_button = QToolButton()
        self.open_folder_button.setText("Show in Folder")  # not the toolbar's Open Folder, which opens slides
        self.open_folder_button.setToolTip("Show the exported file in its folder")
        self.open_folder_button.setAutoRaise(True)
        self.open_folder_button.hide()
        self.open_folder_button.clicked.connect(self.open_last_folder)
        self._hide_button = QTimer(self, singleShot=True, interval=OPEN_FOLDER_MS)
        self._hide_button.timeout.connect(self.open_folder_button.hide)

    # ----- state -----------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._job is not None

    def exportable(self) -> AnalysisResult | None:
        """The open slide's result when it has at least one classified tile, else None."""
        from chaoyang_desktop.gui.main_window import PAGE_SLIDE

        w = self.window
        r = w.result
        if w.slide is None or w.slide_path is None or w.plan is None or r is None or w.stack.currentIndex() != PAGE_SLIDE:
            return None
        return r if r.n_done > 0 else None

    def update_actions(self) -> None:
        busy = self.window.user_job_running()
        ok = self.exportable() is not None and not busy
        for act in self.actions:
            act.setEnabled(ok)
        if not ok:
            why = "Analyse the slide first" if self.exportable() is None else "Wait for the running job to finish"
            for act in self.actions:
                act.setStatusTip(why)
        else:
            for act in self.actions:
                act.setStatusTip(act.toolTip())

    # ----- exporting -------------------------------------------------------------------------------------
    def ask_path(self, kind: str) -> str | None:
        w = self.window
        assert w.slide_path is not None
        _, _, title, filters, _ = _FORMATS[kind]
        path, _ = QFileDialog.getSaveFileName(w, title, default_export_path(w.slide_path, kind), filters)
        return with_suffix(path, kind) if path else None

    def export(self, kind: str, path: str | None = None) -> bool:
        """Ask where (unless ``path``) and start the export; True when the export started (False: not, or not yet).

        The heatmap first asks what to export in a window-modal dialog that does not block the
        event loop; the export goes on when it is accepted.
        """
        if self.exportable() is None or self.window.user_job_running():
            return False
        if kind == EXPORT_HEATMAP:
            if self.heatmap_choice is not None:
                return self._export(kind, path, *self.heatmap_choice)
            w = self.window
            assert w.slide is not None
            dialog = HeatmapExportDialog((w.slide_view.width(), w.slide_view.height()), w.slide.dimensions,
                                         w.style_.show, w)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.accepted.connect(lambda: self._export(kind, path, dialog.whole_slide, dialog.side.value(),
                                                         dialog.legend.isChecked()))
            self.heatmap_dialog = dialog
            dialog.open()
            return False
        return self._export(kind, path)

    def _export(self, kind: str, path: str | None, whole: bool = True, side: int = HEATMAP_DEFAULT_SIDE,
                legend: bool = True) -> bool:
        result = self.exportable()
        if result is None or self.window.user_job_running():
            return False
        if path is None:
            path = self.ask_path(kind)
            if not path:
                return False
        if kind == EXPORT_HEATMAP and not whole:
            return self.save_current_view(path, legend)
        return self._submit(kind, path, result, max_side=side, legend=legend)

    def _roi_of(self, result: AnalysisResult) -> Any:
        """The drawn region the analysis used (None for a whole-slide analysis)."""
        digest = result.provenance.roi_digest
        session = self.window.session
        return session.region_by_digest(digest) if session is not None else None

    def _submit(self, kind: str, path: str, result: AnalysisResult, *, max_side: int, legend: bool) -> bool:
        from chaoyang_desktop.gui.main_window import NOMINAL_MPP

        w = self.window
        assert w.plan is not None and w.session is not None
        style = w.style_
        thumb = w.slide_view.thumbnail_array
        job = ExportJob(kind=kind, path=path, plan=w.plan, tiles=TileState.of(result), slide_path=w.slide_path, mpp=w.session.mpp_override,
                        assumed_mpp=NOMINAL_MPP, class_colors=tuple(style.class_colors), roi=self._roi_of(result),
                        annotations=w.session.annotation_list(),
                        thumbnail=None if thumb is None else np.array(thumb, copy=True), max_side=max_side,
                        alpha=float(style.opacity), alpha_by_confidence=bool(style.alpha_by_confidence), legend=legend)
        self._job = handle = w.host.submit(job)
        handle.replaced.connect(self._on_replaced)
        handle.progress.connect(self._on_progress)
        handle.finished.connect(self._on_finished)
        handle.failed.connect(self._on_failed)
        self._job_kind = kind
        self._partial = not result.complete
        noun = _FORMATS[kind][4]
        w.progress.start(f"Exporting {noun.lower() if kind != EXPORT_CSV else noun}",
                         "tiles" if kind == EXPORT_REPORT else "")
        w.statusBar().showMessage(f"Writing {path}\u2026")
        w._update_actions()  # noqa: SLF001
        return True

    def save_current_view(self, path: str, legend: bool = True) -> bool:
        """Save what the slide view paints now (minimap left out), with the legend when the overlay is on."""
        from chaoyang_desktop.core.atomic import atomic_path

        w = self.window
        view = w.slide_view
        minimap = view.minimap.isVisible()
        view.minimap.hide()
        try:
            image = view.grab().toImage()
        finally:
            view.minimap.setVisible(minimap)
        image.setDevicePixelRatio(1.0)
        image = image.convertToFormat(QImage.Format.Format_RGB32)
        r = w.result
        if legend and w.style_.show and r is not None:
            font = QFont(view.font())
            font.setPixelSize(max(12, round(13 * image.height() / max(1, view.height()))))
            image = with_legend(image, legend_image(w.style_, r.summary(), r.complete, font))
        try:
            with atomic_path(path, suffix=".png") as tmp:
                if not image.save(str(tmp), "PNG"):
                    raise OSError(f"Qt could not encode {path} as PNG")
        except (ChaoyangError, OSError) as exc:
            self._failed(EXPORT_HEATMAP, path, str(exc), "")
            return False
        self._partial = r is not None and not r.complete
        self._succeeded(ExportDone(EXPORT_HEATMAP, path, f"{image.width():,} \u00d7 {image.height():,} px"))
        return True

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.window.progress.set_cancelling()

    # ----- worker signals -------------------------------------------------------------------------------
    def _on_replaced(self) -> None:
        if self._job is not None:
            # Another job replaced ours (a slide was opened): nothing more of ours is listened to.
            kind_ = self._job_kind
            self._end()
            self.window.statusBar().showMessage("Export cancelled; no file was written.", 8000)
            self.export_finished.emit(kind_, "cancelled", "")

    def _on_progress(self, done: int, total: int, elapsed: float) -> None:
        if total > 0:
            self.window.progress.update_progress(done, total, elapsed)

    def _end(self) -> None:
        if self._job is not None:
            self._job.detach()
        self._job = None
        self.window.progress.finish()
        self.window._update_actions()  # noqa: SLF001

    def _on_finished(self, status: str, payload: object) -> None:
        kind = self._job_kind
        self._end()
        if status == STATUS_DONE and isinstance(payload, ExportDone):
            self._succeeded(payload)
        else:
            self.window.statusBar().showMessage("Export cancelled; no file was written.", 10000)
            self.export_finished.emit(kind, "cancelled", "")

    def _on_failed(self, message: str, details: str) -> None:
        kind = self._job_kind
        self._end()
        self._failed(kind, "", message, details)

    def _succeeded(self, done: ExportDone) -> None:
        self.last_path = done.path
        noun = _FORMATS[done.kind][4]
        partial = " from a partial analysis" if self._partial else ""
        self.window.statusBar().showMessage(f"{noun} saved{partial}: {done.path} ({done.detail})", OPEN_FOLDER_MS)
        self.open_folder_button.show()
        self._hide_button.start()
        self.export_finished.emit(done.kind, "done", done.path)

    def _failed(self, kind: str, path: str, message: str, details: str) -> None:
        self.window.report_error("Export failed", message, details)
        self.export_finished.emit(kind, "failed", path)

    def open_last_folder(self) -> None:
        if self.last_path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.last_path).parent)))
        self.open_folder_button.hide()

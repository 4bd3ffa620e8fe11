"""Analysis > Evaluate Labelled Folder: the model's scores on the user's own labelled patches.

The :class:`Evaluator` asks for a folder with one sub-folder per class (and, optionally, a
class-map JSON that maps other folder names to the model's classes), then runs an
:class:`~chaoyang_desktop.gui.analysis_worker.EvaluateJob` on the worker with progress and
Cancel. The :class:`EvaluationView` shows the :class:`~chaoyang_desktop.core.learn.evaluate.EvaluationReport`
as ``chaoyang-desktop evaluate`` prints it: precision/recall/F1/support per class, then
accuracy, macro and weighted averages; the confusion matrix (rows: true class, columns:
predicted, shaded by the row's share as in ``confusion_matrix.png``); the expected calibration
error; and the misclassified images, most confident first. "Save Report..." writes the same
files as ``evaluate --out``.

"Fit Temperature" fits a temperature on the evaluated patches (as ``evaluate --fit-temperature``
does, from the probabilities already shown: no second inference), shows the calibration error
and the reliability diagram before and after, and asks where to save the temperature file.
"Use This Calibration" then emits :attr:`EvaluationView.calibration_saved` with its path (the
:class:`Evaluator` forwards it as its own ``calibration_saved``); the main window stores it in the
engine settings. The view never writes settings itself.
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.gui.actions import make_action
from chaoyang_desktop.gui.analysis_worker import STATUS_DONE, EvaluateJob, EvaluationOutcome

if TYPE_CHECKING:
    from chaoyang_desktop.core.learn.evaluate import EvaluationReport
    from chaoyang_desktop.core.model.temperature import TemperatureFile
    from chaoyang_desktop.gui.main_window import MainWindow
    from chaoyang_desktop.gui.job_handle import JobHandle

SUMMARY_ROWS = ("accuracy", "macro avg", "weighted avg")
# The sequential blues of confusion_matrix.png (export/charts.py), so the two read alike.
_LOW = np.array([247, 251, 255], dtype=np.float64)
_HIGH = np.array([8, 48, 107], dtype=np.float64)


class EvaluateDialog(QDialog):
    """Which labelled data to evaluate, and an optional class map."""

    def __init__(self, class_names: tuple[str, ...], folder: str = "", class_map: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evaluate_dialog")
        self.setWindowTitle("Evaluate Labelled Folder")
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Classify labelled patches and compare with their labels: precision, recall and F1 per class, "
            "the confusion matrix and the calibration error.<br><br>The folder holds <b>one sub-folder per "
            f"class</b>, named like the model's classes ({', '.join(class_names)}; case is ignored), "
            "or mapped to them by a class map.")
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(intro)
        grid = QGridLayout()
        self.folder = QLineEdit(folder)
        self.folder.setPlaceholderText("e.g. /data/labelled/  (Normal/, Adenoma/, ...)")
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse_folder)
        grid.addWidget(QLabel("Labelled folder:"), 0, 0)
        grid.addWidget(self.folder, 0, 1)
        grid.addWidget(browse, 0, 2)
        self.use_map = QCheckBox("Map folder names with a class-map JSON:")
        self.use_map.setToolTip('A JSON object from folder names to class names; null leaves a folder out, e.g. '
                                '{"TUM": "Adenocarcinoma", "NORM": "Normal", "ADI": null}')
        self.class_map = QLineEdit(class_map)
        self.class_map.setPlaceholderText('{"TUM": "Adenocarcinoma", "ADI": null}')
        self.map_browse = QPushButton("Browse\u2026")
        self.map_browse.clicked.connect(self._browse_map)
        self.use_map.setChecked(bool(class_map))
        grid.addWidget(self.use_map, 1, 0, 1, 3)
        grid.addWidget(self.class_map, 2, 1)
        grid.addWidget(self.map_browse, 2, 2)
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Evaluate")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.folder.textChanged.connect(self._sync)
        self.class_map.textChanged.connect(self._sync)
        self.use_map.toggled.connect(self._sync)
        self._sync()
        self.setMinimumWidth(560)

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled folder (one sub-folder per class)", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _browse_map(self) -> None:
        start = self.class_map.text() or self.folder.text()
        path, _ = QFileDialog.getOpenFileName(self, "Class map", start, "Class map (*.json);;All files (*)")
        if path:
            self.class_map.setText(path)
            self.use_map.setChecked(True)

    def _sync(self) -> None:
        self.class_map.setEnabled(self.use_map.isChecked())
        self.map_browse.setEnabled(self.use_map.isChecked())
        ok = bool(self.folder.text().strip()) and (not self.use_map.isChecked() or bool(self.class_map.text().strip()))
        self.ok.setEnabled(ok)

    def values(self) -> tuple[str, str | None]:
        """(data folder, class-map path or None)."""
        cmap = self.class_map.text().strip() if self.use_map.isChecked() else ""
        return self.folder.text().strip(), cmap or None


def _item(text: str, align_right: bool = False, bold: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if bold:
        font = item.font()
        font.setBold(True)
        item.setFont(font)
    return item


def _fit_table(table: QTableWidget, row_height: int | None = None, min_column: int = 0) -> None:
    """Size a small table to its contents, so no scroll bar hides a row and no blank area is left."""
    table.resizeColumnsToContents()
    for c in range(table.columnCount()):
        table.setColumnWidth(c, max(min_column, table.columnWidth(c) + 8))
    if row_height is None:
        table.resizeRowsToContents()
    else:
        for r in range(table.rowCount()):
            table.setRowHeight(r, row_height)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    vh = table.verticalHeader()
    h = table.horizontalHeader().sizeHint().height() + sum(table.rowHeight(r) for r in range(table.rowCount()))
    w = (0 if vh.isHidden() else vh.sizeHint().width()) + sum(table.columnWidth(c) for c in range(table.columnCount()))
    table.setFixedSize(w + 2 * table.frameWidth(), h + 2 * table.frameWidth())


def _pixmap(image: Any, width: int) -> QPixmap:
    """A Pillow RGB image as a pixmap ``width`` pixels wide (built here, on the GUI thread)."""
    rgb = image.convert("RGB")
    data = rgb.tobytes()
    qimg = QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(qimg).scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)


class EvaluationView(QDialog):
    """The evaluation report: scores table, confusion matrix, calibration and misclassified images."""

    #: The path of a saved temperature file the user chose to use (for the engine settings).
    calibration_saved = Signal(str)

    def __init__(self, report: EvaluationReport, notes: tuple[str, ...] = (), description: str = "",
                 parent: QWidget | None = None, on_error: Any = None, on_show_patches: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("evaluation_view")
        self.report = report
        self._on_error = on_error
        self._on_show_patches = on_show_patches
        self.saved_to: Path | None = None
        #: The report with a temperature fit (before/after), once "Fit Temperature" succeeded.
        self.fitted_report: EvaluationReport | None = None
        self.calibration_file: TemperatureFile | None = None
        self.calibration_path: Path | None = None
        data = report.data
        source = str(data.get("source", ""))
        self.setWindowTitle(f"Evaluation \u2014 {Path(source).name or source}")
        layout = QVBoxLayout(self)

        model = report.model
        head = QLabel(
            f"<b>{escape(description or f'{report.n:,} labelled images')}</b> from <code>{escape(source)}</code><br>"
            f"Model <b>{escape(str(model.get('model_id', '?')))}</b> on {escape(str(model.get('device', '?')))} "
            f"({model.get('channel_order', '?').upper()} input, {model.get('resize', '?')} resize)")
        head.setTextFormat(Qt.TextFormat.RichText)
        head.setWordWrap(True)
        head.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(head)

        top = QHBoxLayout()
        # Scores, as the model card's table.
        scores_box = QGroupBox("Scores")
        sv = QVBoxLayout(scores_box)
        rows = report.table_rows()
        self.scores = QTableWidget(len(rows), 5)
        self.scores.setObjectName("scores_table")
        self.scores.setHorizontalHeaderLabels(["", "precision", "recall", "F1", "support"])
        self.scores.verticalHeader().hide()
        self.scores.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.scores.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.scores.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for r, row in enumerate(rows):
            summary = row[0] in SUMMARY_ROWS
            for c, text in enumerate(row):
                self.scores.setItem(r, c, _item(text, align_right=c > 0, bold=summary and c == 0))
        _fit_table(self.scores, min_column=56)
        sv.addWidget(self.scores)
        cal = report.calibration
        facts = [f"Accuracy <b>{report.accuracy:.3f}</b> \u00b7 macro F1 <b>{report.metrics.macro.f1:.3f}</b>",
                 f"Expected calibration error <b>{cal.ece:.3f}</b> ({len(cal.bins)} bins; largest gap "
                 f"{cal.max_gap:.3f}) \u00b7 log loss {report.log_loss:.3f}"]
        ref = report.reference()
        if ref is not None:
            facts.append(f"Model card (Chaoyang test set): accuracy {ref['accuracy']:.2f}, macro F1 {ref['macro_f1']:.2f}")
        if len(report.metrics.averaged) < len(report.class_names):
            facts.append("Classes with dashes occur neither in the labels nor in the predictions; they are not averaged.")
        self.facts = QLabel("<br>".join(facts))
        self.facts.setTextFormat(Qt.TextFormat.RichText)
        self.facts.setWordWrap(True)
        sv.addWidget(self.facts)
        sv.addStretch(1)
        top.addWidget(scores_box, 0)

        # Confusion matrix as a shaded table: rows true, columns predicted.
        cm_box = QGroupBox("Confusion matrix (rows: true class, columns: predicted)")
        cv = QVBoxLayout(cm_box)
        self.confusion = np.asarray(report.confusion, dtype=np.int64)
        k = len(report.class_names)
        self.confusion_table = QTableWidget(k, k)
        self.confusion_table.setObjectName("confusion_table")
        self.confusion_table.setHorizontalHeaderLabels(list(report.class_names))
        self.confusion_table.setVerticalHeaderLabels(list(report.class_names))
        self.confusion_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.confusion_table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        row_sums = self.confusion.sum(axis=1)
        for i in range(k):
            for j in range(k):
                n = int(self.confusion[i, j])
                frac = n / row_sums[i] if row_sums[i] else 0.0
                text = f"{n}\n{100 * frac:.0f}%" if row_sums[i] else f"{n}"
                item = _item(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                rgb = _LOW + (_HIGH - _LOW) * frac
                item.setBackground(QColor(*(int(round(v)) for v in rgb)))
                item.setForeground(QColor(255, 255, 255) if frac > 0.5 else QColor(30, 30, 30))
                if i == j:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                item.setToolTip(f"true {report.class_names[i]}, predicted {report.class_names[j]}: {n} image(s)")
                self.confusion_table.setItem(i, j, item)
        _fit_table(self.confusion_table, row_height=2 * self.fontMetrics().height() + 12, min_column=84)
        cv.addWidget(self.confusion_table, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        legend = QLabel("Each cell: images, and their share of the true class (row). Bold: right answers.")
        legend.setWordWrap(True)
        legend.setStyleSheet("color: palette(placeholder-text);")
        cv.addWidget(legend)
        cv.addStretch(1)
        top.addWidget(cm_box, 1)
        layout.addLayout(top)

        # Temperature scaling: hidden until a fit is made.
        self.calibration_box = QGroupBox("Temperature scaling (calibration)")
        self.calibration_box.setObjectName("calibration_box")
        cal_layout = QHBoxLayout(self.calibration_box)
        self.fit_text = QLabel()
        self.fit_text.setObjectName("fit_text")
        self.fit_text.setTextFormat(Qt.TextFormat.RichText)
        self.fit_text.setWordWrap(True)
        self.fit_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fit_diagram = QLabel()
        self.fit_diagram.setObjectName("fit_diagram")
        self.fit_diagram.setToolTip("Reliability diagrams before and after temperature scaling (as in reliability.png)")
        self.fit_text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        cal_layout.addWidget(self.fit_text, 1)
        cal_layout.addWidget(self.fit_diagram, 0, Qt.AlignmentFlag.AlignTop)
        self.calibration_box.setVisible(False)
        layout.addWidget(self.calibration_box)

        # Misclassified, most confident first.
        wrong = report.misclassified()
        self.misclassified = wrong
        mis_box = QGroupBox(f"Misclassified: {len(wrong):,} of {report.n:,} (most confident first; double-click opens "
                            "the image)")
        mv = QVBoxLayout(mis_box)
        self.mis_table = QTableWidget(len(wrong), 4)
        self.mis_table.setObjectName("misclassified_table")
        self.mis_table.setHorizontalHeaderLabels(["image", "true", "predicted", "confidence"])
        self.mis_table.verticalHeader().hide()
        self.mis_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.mis_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for r, p in enumerate(wrong):
            name = _item(Path(p.path).name)
            name.setToolTip(p.path)
            name.setData(Qt.ItemDataRole.UserRole, p.path)
            self.mis_table.setItem(r, 0, name)
            self.mis_table.setItem(r, 1, _item(report.class_names[p.true_index]))
            self.mis_table.setItem(r, 2, _item(report.class_names[p.predicted_index]))
            self.mis_table.setItem(r, 3, _item(f"{100 * p.confidence:.1f} %", align_right=True))
        self.mis_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in (1, 2, 3):
            self.mis_table.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        row_h = self.fontMetrics().height() + 8
        self.mis_table.verticalHeader().setDefaultSectionSize(row_h)
        # Tall enough for a dozen rows (or all of them), so the dialog opens without a blank half.
        shown_rows = min(max(len(wrong), 3), 12)
        self.mis_table.setMinimumHeight(self.mis_table.horizontalHeader().sizeHint().height() + shown_rows * row_h + 4)
        self.mis_table.cellDoubleClicked.connect(self._open_image)
        mv.addWidget(self.mis_table)
        layout.addWidget(mis_box, 1)

        problems = list(notes) + [f"Could not be read (left out): {Path(p).name}: {e}" for p, e in report.failures[:5]]
        if len(report.failures) > 5:
            problems.append(f"\u2026 and {len(report.failures) - 5} more unreadable image(s) (see metrics.json).")
        self.notes = QLabel("\n".join(problems))
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #b35c00;")
        self.notes.setVisible(bool(problems))
        layout.addWidget(self.notes)

        buttons = QDialogButtonBox()
        self.save_button = buttons.addButton("Save Report\u2026", QDialogButtonBox.ButtonRole.ActionRole)
        self.save_button.setToolTip("Write metrics.json, metrics.md, confusion_matrix.csv/.png, reliability.png, "
                                    "misclassified.csv and predictions.csv into a folder")
        self.save_button.clicked.connect(self.save_dialog)
        self.gallery_button = buttons.addButton("Show Misclassified in Gallery",
                                                QDialogButtonBox.ButtonRole.ActionRole)
        self.gallery_button.setEnabled(bool(wrong) and on_show_patches is not None)
        self.gallery_button.clicked.connect(lambda: self._on_show_patches([p.path for p in wrong]))
        self.fit_button = buttons.addButton("Fit Temperature…", QDialogButtonBox.ButtonRole.ActionRole)
        self.fit_button.setObjectName("fit_temperature_button")
        self.fit_button.setToolTip("Fit a temperature that makes the confidences match how often the model is right on "
                                   "these patches (changes no prediction), then save it")
        self.fit_button.clicked.connect(self._fit_clicked)
        self.save_calibration_button = buttons.addButton("Save Calibration…", QDialogButtonBox.ButtonRole.ActionRole)
        self.save_calibration_button.setEnabled(False)
        self.save_calibration_button.clicked.connect(self.save_calibration_dialog)
        self.use_calibration_button = buttons.addButton("Use This Calibration", QDialogButtonBox.ButtonRole.ActionRole)
        self.use_calibration_button.setToolTip("Calibrate the probabilities of every analysis with the saved temperature")
        self.use_calibration_button.setEnabled(False)
        self.use_calibration_button.clicked.connect(self.use_calibration)
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.clicked.connect(self.close)
        close.setDefault(True)
        layout.addWidget(buttons)
        self.resize(max(980, self.sizeHint().width()), self.sizeHint().height())
        close.setFocus()

    def accuracy_text(self) -> str:
        """The F1 cell of the accuracy row, as shown."""
        for r in range(self.scores.rowCount()):
            name, f1 = self.scores.item(r, 0), self.scores.item(r, 3)
            if name is not None and f1 is not None and name.text() == "accuracy":
                return f1.text()
        return ""

    def _open_image(self, row: int, column: int) -> None:
        item = self.mis_table.item(row, 0)
        if item is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.data(Qt.ItemDataRole.UserRole))))

    def default_folder(self) -> str:
        source = Path(str(self.report.data.get("source", "")))
        return str(source.parent / f"{source.stem or 'labelled'}_evaluation")

    def save_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Folder for the evaluation files (metrics.json, metrics.md, confusion matrix, ...)",
            str(Path(self.default_folder()).parent))
        if folder:
            self.save_to(folder)

    def save_to(self, folder: str) -> bool:
        """Write the report files (with the temperature fit and calibration.json, once one was made)."""
        from chaoyang_desktop.export.evaluation_report import write_evaluation

        try:
            write_evaluation(self.fitted_report or self.report, folder)
        except (ChaoyangError, OSError) as exc:
            if self._on_error is not None:
                self._on_error("Cannot save the evaluation", str(exc))
            return False
        self.saved_to = Path(folder)
        self.save_button.setText("Saved \u2713")
        self.save_button.setToolTip(f"Saved in {folder}")
        return True

    def _fit_clicked(self) -> None:
        if self.fit_temperature():
            self.save_calibration_dialog()

    def fit_temperature(self) -> bool:
        """Fit a temperature on the evaluated patches and show the calibration before and after.

        Instant (numpy on the probabilities already computed), so it runs on the GUI thread.
        A refusal (too few patches, one class, no usable optimum) goes to the error dialog.
        """
        from chaoyang_desktop.core.learn.evaluate import fit_report_temperature
        from chaoyang_desktop.export.charts import render_reliability_before_after

        try:
            file, fitted = fit_report_temperature(self.report)
        except ChaoyangError as exc:
            if self._on_error is not None:
                self._on_error("Cannot fit a temperature", str(exc))
            return False
        fit = fitted.calibration_fit
        assert fit is not None  # fit_report_temperature always sets it
        self.fitted_report, self.calibration_file = fitted, file
        base = (f" (the evaluation already ran at T = {fit.base_temperature:.3g}; the saved temperature includes it)"
                if fit.base_temperature != 1.0 else "")
        lines = [f"Temperature <b>{file.temperature:.3f}</b> fitted on {file.n:,} patches{base}.",
                 f"Expected calibration error <b>{fit.before.ece:.3f} \u2192 {fit.after.ece:.3f}</b>",
                 f"Largest bin gap {fit.before.max_gap:.3f} \u2192 {fit.after.max_gap:.3f}",
                 f"Log loss {file.nll_before:.3f} \u2192 {file.nll_after:.3f}",
                 "Predictions do not change, only the confidences. Fitted and measured on the same patches, the "
                 "\u201cafter\u201d numbers are optimistic: evaluate other labelled patches with it to check."]
        if fit.note:
            lines.append(escape(fit.note))
        self.fit_text.setText("<br>".join(lines))
        image = render_reliability_before_after(fit.before, fit.after, fit.temperature,
                                                base_temperature=fit.base_temperature, size=480)
        self.fit_diagram.setPixmap(_pixmap(image, 560))
        self.calibration_box.setVisible(True)
        self.fit_button.setEnabled(False)
        self.fit_button.setText("Temperature Fitted \u2713")
        self.save_calibration_button.setEnabled(True)
        self.save_button.setToolTip(self.save_button.toolTip() + ", with the calibration before and after and "
                                    "calibration.json")
        return True

    def default_calibration_path(self) -> str:
        """``calibration.json`` beside the labelled folder (or in the saved report's folder)."""
        if self.saved_to is not None:
            return str(self.saved_to / "calibration.json")
        return str(Path(self.default_folder()).parent / "calibration.json")

    def save_calibration_dialog(self) -> None:
        if self.calibration_file is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the calibration (temperature file)",
                                              self.default_calibration_path(), "Calibration (*.json);;All files (*)")
        if path:
            self.save_calibration_to(path)

    def save_calibration_to(self, path: str) -> bool:
        """Write the temperature file (atomically) and offer to use it."""
        if self.calibration_file is None:
            return False
        try:
            self.calibration_file.save(path)
        except (ChaoyangError, OSError) as exc:
            if self._on_error is not None:
                self._on_error("Cannot save the calibration", str(exc))
            return False
        self.calibration_path = Path(path)
        self.save_calibration_button.setText("Calibration Saved \u2713")
        self.save_calibration_button.setToolTip(f"Saved as {path}")
        self.use_calibration_button.setEnabled(True)
        self.use_calibration_button.setToolTip(f"Calibrate the probabilities of every analysis with {path}")
        return True

    def use_calibration(self) -> None:
        """Hand the saved file's path to whoever keeps the settings (``calibration_saved``)."""
        if self.calibration_path is None:
            return
        self.calibration_saved.emit(str(self.calibration_path))
        self.use_calibration_button.setEnabled(False)
        self.use_calibration_button.setText("Calibration in Use \u2713")


class Evaluator(QObject):
    """Analysis > Evaluate Labelled Folder: asks, runs on the worker, shows the report."""

    evaluation_finished = Signal(str)  # "done", "cancelled", "failed", "model-missing"
    #: A report view's "Use This Calibration": the temperature file's path, for the engine settings.
    calibration_saved = Signal(str)

    @property
    def window(self) -> MainWindow:
        """The main window that owns this (its Qt parent)."""
        return cast("MainWindow", self.parent())

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)  # the window owns this; no reference back, so no cycle to collect
        self._job: JobHandle | None = None
        self._started = 0.0
        self._request: tuple[str, str | None] | None = None
        self.view: EvaluationView | None = None
        self.dialog: EvaluateDialog | None = None
        self.act_evaluate = make_action(
            window, "&Evaluate Labelled Folder\u2026", self.ask,
            tip="Measure the model on labelled patches: precision, recall, F1, confusion matrix, calibration")

    @property
    def running(self) -> bool:
        return self._job is not None

    def update_actions(self) -> None:
        self.act_evaluate.setEnabled(not self.window.user_job_running())

    def ask(self) -> None:
        last = self._request or ("", None)
        dialog = EvaluateDialog(self.window.style_.class_names, last[0], last[1] or "", self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.start(*dialog.values()))
        self.dialog = dialog
        dialog.open()

    def start(self, data: str, class_map: str | None = None) -> JobHandle | None:
        w = self.window
        if w.user_job_running():
            return None
        self._request = (data, class_map)
        job = EvaluateJob(data, class_map, w._model_request(), workers=max(1, w.settings.get("analysis/workers")))  # noqa: SLF001
        self._job = handle = w.host.submit(job)
        handle.replaced.connect(self._on_replaced)
        handle.progress.connect(self._on_progress)
        handle.finished.connect(self._on_finished)
        handle.failed.connect(self._on_failed)
        handle.model_missing.connect(self._on_model_missing)
        self._started = time.perf_counter()
        w.progress.start("Evaluating", "images")
        w.statusBar().showMessage(f"Evaluating the model on {data}\u2026")
        w._update_actions()  # noqa: SLF001
        return self._job

    def retry(self) -> None:
        if self._request is not None:
            self.start(*self._request)

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.window.progress.set_cancelling()

    def _end(self) -> None:
        if self._job is not None:
            self._job.detach()
        self._job = None
        self.window.progress.finish()
        self.window._update_actions()  # noqa: SLF001

    def _on_replaced(self) -> None:
        """A slide was opened, and its job took the worker: the evaluation is cancelled."""
        if self._job is not None:
            self._end()
            self.window.statusBar().showMessage("Evaluation cancelled.", 8000)
            self.evaluation_finished.emit("cancelled")

    def _on_progress(self, done: int, total: int, elapsed: float) -> None:
        if done == 0:
            self.window.progress.set_total(total, 0)
        self.window.progress.update_progress(done, total, elapsed)

    def _on_finished(self, status: str, payload: object) -> None:
        self._end()
        if status == STATUS_DONE and isinstance(payload, EvaluationOutcome):
            self.show_report(payload)
            r = payload.report
            took = time.perf_counter() - self._started
            self.window.statusBar().showMessage(
                f"Evaluated {r.n:,} images in {took:.1f} s: accuracy {r.accuracy:.3f}, macro F1 {r.metrics.macro.f1:.3f}.",
                15000)
            self.evaluation_finished.emit("done")
        else:
            self.window.statusBar().showMessage("Evaluation cancelled.", 10000)
            self.evaluation_finished.emit("cancelled")

    def show_report(self, outcome: EvaluationOutcome) -> EvaluationView:
        w = self.window
        if self.view is not None:
            self.view.close()
        view = EvaluationView(outcome.report, outcome.notes, outcome.description, w, on_error=w.report_error,
                              on_show_patches=lambda paths: w.open_paths(paths))
        view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        view.calibration_saved.connect(self.calibration_saved)  # signal to signal: no closure, no cycle
        view.destroyed.connect(lambda: setattr(self, "view", None) if self.view is view else None)
        self.view = view
        view.show()
        return view

    def _on_failed(self, message: str, details: str) -> None:
        self._end()
        self.window.report_error("Cannot evaluate", message, details)
        self.evaluation_finished.emit("failed")

    def _on_model_missing(self, message: str) -> None:
        self._end()
        self.window.statusBar().showMessage("The model is not on this computer yet.", 10000)
        self.evaluation_finished.emit("model-missing")
        w = self.window
        w._pending_after_model = "evaluate"  # noqa: SLF001
        if w.interactive:
            w.show_model_dialog(message, missing=True)
        else:
            w.report_error("Model not available", message)

"""The cohort window: every slide of an opened folder, analysed in one run, with its numbers.

A top-level window of the main window. It shows the :class:`~chaoyang_desktop.gui.cohort_runner.CohortRunner`'s
table through a sorting and filtering proxy, its Analyze All / Pause / Resume / Cancel buttons,
where the run goes (this computer or a Ray cluster), the settings the run uses, its pace, and
writes ``cohort.csv`` and ``cohort.pdf``. A double-click asks the main window to open the slide.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.core.analysis.cohort import (
    FINAL_STATUSES,
    SLIDE_RUNNING,
    SLIDE_STATUSES,
)
from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.gui.cohort_model import COL_PROGRESS, COL_SLIDE, COL_STATUS, VALUE_ROLE, CohortFilter
from chaoyang_desktop.gui.cohort_runner import (
    RUN_CHOICES,
    RUN_LOCAL,
    RUN_RAY,
    STATE_IDLE,
    STATE_PAUSED,
    STATE_RUNNING,
    CohortRunner,
)

if TYPE_CHECKING:
    from chaoyang_desktop.export.cohort_csv import CohortEntry
    from chaoyang_desktop.gui.settings import AppSettings

#: What the export writes into the chosen folder.
COHORT_PDF = "cohort.pdf"


class ProgressDelegate(QStyledItemDelegate):
    """Draws the running slide's share of tiles done as a progress bar (other rows as text)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        status = index.sibling(index.row(), COL_STATUS).data(VALUE_ROLE)
        if status != SLIDE_RUNNING:
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = QRect(option.rect.adjusted(3, 3, -3, -3))
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = round(1000 * float(index.data(VALUE_ROLE) or 0.0))
        bar.text = str(index.data() or "")
        bar.textVisible = True
        # Qt 6 draws a bar without State_Horizontal as a vertical one.
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        style = option.widget.style() if option.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


def _ray_missing_hint() -> str:
    """How to install Ray, or "" when it is installed (a bundle or a pip install without the extra lacks it)."""
    from chaoyang_desktop.core.cluster.availability import INSTALL_HINT, ray_available

    return "" if ray_available() else f"Ray is not installed here: {INSTALL_HINT}."


class CohortWindow(QWidget):
    """The cohort's table and controls; the runner does the work."""

    #: A row was double-clicked: the main window opens the slide.
    slide_activated = Signal(str)
    #: Something went wrong that the user should read: title, one-line message.
    error_raised = Signal(str, str)
    #: An export was written: the folder.
    exported = Signal(str)

    def __init__(self, runner: CohortRunner, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("cohort_window")
        self.runner = runner
        self.settings = settings
        self.resize(1200, 560)
        layout = QVBoxLayout(self)

        bar = QHBoxLayout()
        self.analyze_button = QPushButton("Analyze All")
        self.analyze_button.setToolTip("Analyse every slide not analysed yet, one after the other, with the "
                                       "current Settings (they apply to the whole run)")
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the run; slides not finished go back to \u201cnew\u201d "
                                      "(their finished tiles are kept)")
        self.run_on_combo = QComboBox()
        for value, label in RUN_CHOICES:
            self.run_on_combo.addItem(label, value)
        self.run_on_combo.setToolTip("This computer: the slides run one after the other here. Ray cluster: they go "
                                     "to the cluster set in Settings \u25b8 Cluster (local starts Ray here).")
        self._mark_ray_missing()
        self.export_button = QPushButton("Export\u2026")
        self.export_button.setToolTip(f"Write cohort.csv and {COHORT_PDF} (one row per slide) into a folder")
        for w in (self.analyze_button, self.pause_button, self.cancel_button):
            bar.addWidget(w)
        bar.addSpacing(16)
        bar.addWidget(QLabel("Run on:"))
        bar.addWidget(self.run_on_combo)
        bar.addStretch(1)
        bar.addWidget(self.export_button)
        layout.addLayout(bar)

        self.settings_label = QLabel()
        self.settings_label.setObjectName("cohort_settings")
        self.settings_label.setWordWrap(True)
        self.settings_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.settings_label.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.settings_label)

        pace = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumWidth(260)
        self.pace_label = QLabel()
        pace.addWidget(self.progress_bar)
        pace.addWidget(self.pace_label, 1)
        layout.addLayout(pace)

        filters = QHBoxLayout()
        filters.addWidget(QLabel("Show:"))
        self.status_combo = QComboBox()
        self.status_combo.addItem("All slides", "")
        for status in SLIDE_STATUSES:
            self.status_combo.addItem(status, status)
        filters.addWidget(self.status_combo)
        filters.addSpacing(12)
        filters.addWidget(QLabel("with"))
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("Only slides where this class covers at least the share given")
        filters.addWidget(self.class_combo)
        filters.addWidget(QLabel("\u2265"))
        self.percent_spin = QDoubleSpinBox()
        self.percent_spin.setRange(0.0, 100.0)
        self.percent_spin.setDecimals(1)
        self.percent_spin.setSingleStep(5.0)
        self.percent_spin.setSuffix(" %")
        filters.addWidget(self.percent_spin)
        filters.addStretch(1)
        self.count_label = QLabel()
        filters.addWidget(self.count_label)
        layout.addLayout(filters)

        self.proxy = CohortFilter(self)
        self.proxy.setSourceModel(runner.model)
        self.table = QTableView()
        self.table.setObjectName("cohort_table")
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)  # a reason reads from its start
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 10)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # folder order at first
        self.table.setSortingEnabled(True)
        self.table.setItemDelegateForColumn(COL_PROGRESS, ProgressDelegate(self.table))
        self.table.setToolTip("Double-click a slide to open it (a finished one shows its heatmap)")
        layout.addWidget(self.table, 1)

        self.analyze_button.clicked.connect(self.analyze_all)
        self.pause_button.clicked.connect(self._pause_or_resume)
        self.cancel_button.clicked.connect(runner.cancel)
        self.export_button.clicked.connect(self.export_dialog)
        self.run_on_combo.currentIndexChanged.connect(
            lambda _i: settings.set("cohort/run_on", self.run_on_combo.currentData()))
        self.status_combo.currentIndexChanged.connect(self._filter_changed)
        self.class_combo.currentIndexChanged.connect(self._filter_changed)
        self.percent_spin.valueChanged.connect(self._filter_changed)
        self.table.doubleClicked.connect(self._activated)
        runner.state_changed.connect(self._update_buttons)
        runner.paced.connect(self._show_pace)
        runner.described.connect(self.settings_label.setText)
        m = runner.model
        m.modelReset.connect(self._columns_changed)
        for signal in (m.modelReset, m.dataChanged, self.proxy.rowsInserted, self.proxy.rowsRemoved,
                       self.proxy.modelReset, self.proxy.layoutChanged):
            signal.connect(self._update_counts)

        i = self.run_on_combo.findData(settings.get("cohort/run_on"))
        self.run_on_combo.setCurrentIndex(max(0, i))
        self._columns_changed()
        self._update_buttons()
        self._show_pace(runner.pace())
        self.settings_label.setText(runner.settings_line())

    # ----- the cohort --------------------------------------------------------------------------------------
    def set_title(self, folder: Path | None) -> None:
        name = folder.name if folder is not None else f"{len(self.runner.model.rows)} slides"
        self.setWindowTitle(f"Cohort \u2014 {name}")

    def _mark_ray_missing(self) -> None:
        """Without Ray the cluster choice is greyed out and says how to install it (never a dead end)."""
        hint = _ray_missing_hint()
        if not hint:
            return
        i = self.run_on_combo.findData(RUN_RAY)
        self.run_on_combo.setItemText(i, "Ray cluster (not installed)")
        self.run_on_combo.setItemData(i, hint, Qt.ItemDataRole.ToolTipRole)
        item = self.run_on_combo.model().item(i)  # type: ignore[attr-defined]  # a QStandardItemModel
        item.setEnabled(False)

    def analyze_all(self) -> bool:
        return self.runner.analyze_all(self.run_on_combo.currentData() or RUN_LOCAL)

    def _pause_or_resume(self) -> None:
        if self.runner.state == STATE_PAUSED:
            self.runner.resume()
        else:
            self.runner.pause()

    def _update_buttons(self, _state: str = "") -> None:
        r = self.runner
        has_rows = bool(r.model.rows)
        self.analyze_button.setEnabled(r.state == STATE_IDLE and has_rows)
        all_ended = has_rows and r.model.finished() == len(r.model.rows)
        self.analyze_button.setText("Analyze All Again" if all_ended else "Analyze All")
        self.pause_button.setText("Resume" if r.state == STATE_PAUSED else "Pause")
        self.pause_button.setEnabled(r.state in (STATE_RUNNING, STATE_PAUSED))
        self.cancel_button.setEnabled(r.state in (STATE_RUNNING, STATE_PAUSED))
        self.run_on_combo.setEnabled(r.state == STATE_IDLE)
        self.export_button.setEnabled(has_rows)

    def _show_pace(self, line: str) -> None:
        n = len(self.runner.model.rows)
        self.progress_bar.setRange(0, max(1, 1000 * n))
        self.progress_bar.setValue(round(1000 * self.runner.progress()))
        self.pace_label.setText(line)
        self._update_buttons()

    # ----- columns and filters -----------------------------------------------------------------------------
    def _columns_changed(self) -> None:
        m = self.runner.model
        current = self.class_combo.currentData()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("any class", "")
        for name in m.class_names:
            self.class_combo.addItem(name, name)
        self.class_combo.setCurrentIndex(max(0, self.class_combo.findData(current)))
        self.class_combo.blockSignals(False)
        self._filter_changed()
        # Every column but the reason fits its header (the reason, last, takes what is left): the
        # reason of a failure must show without scrolling sideways.
        header = self.table.horizontalHeader()
        text = self.table.fontMetrics()
        widths = {COL_SLIDE: 180, COL_STATUS: text.horizontalAdvance("out of domain") + 20,
                  COL_PROGRESS: 72, m.col_time: text.horizontalAdvance("cached") + 24}
        for col, name in enumerate(m.headers()):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            self.table.setColumnWidth(col, widths.get(col, header.fontMetrics().horizontalAdvance(name) + 22))

    def _filter_changed(self) -> None:
        self.proxy.set_status(self.status_combo.currentData() or None)
        name = self.class_combo.currentData() or None
        self.percent_spin.setEnabled(name is not None)
        self.proxy.set_class_minimum(name, self.percent_spin.value())
        self._update_counts()

    def _update_counts(self, *_args: object) -> None:
        m = self.runner.model
        shown, total = self.proxy.rowCount(), len(m.rows)
        by_status = [f"{m.count(s)} {s}" for s in SLIDE_STATUSES if m.count(s)]
        self.count_label.setText((f"{shown} of {total} shown \u00b7 " if shown != total else "")
                                 + " \u00b7 ".join(by_status))

    def path_at(self, proxy_row: int) -> str:
        """The slide shown in row ``proxy_row`` of the table (sorted and filtered)."""
        source = self.proxy.mapToSource(self.proxy.index(proxy_row, 0))
        return self.runner.model.rows[source.row()].path

    def shown_paths(self) -> list[str]:
        return [self.path_at(i) for i in range(self.proxy.rowCount())]

    def _activated(self, index: QModelIndex) -> None:
        self.slide_activated.emit(self.path_at(index.row()))

    # ----- export ------------------------------------------------------------------------------------------
    def entries(self) -> list[CohortEntry]:
        """One ``cohort.csv`` row per slide, in the folder's order (the app writes no per-slide folders)."""
        from chaoyang_desktop.export.cohort_csv import report_entry

        # Slides not ended (new, queued, running) are listed as not analysed.
        return [report_entry(r.report if r.status in FINAL_STATUSES else None, r.path) for r in self.runner.model.rows]

    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the cohort (cohort.csv and cohort.pdf) to")
        if folder:
            self.export_to(folder)

    def export_to(self, folder: str | Path) -> list[Path]:
        """Write ``cohort.csv`` and ``cohort.pdf`` into ``folder``; the files written (none on failure)."""
        from chaoyang_desktop.export.cohort_csv import COHORT_CSV, write_cohort_csv

        target = Path(folder)
        entries = self.entries()
        written: list[Path] = []
        try:
            write_cohort_csv(entries, target / COHORT_CSV)
            written.append(target / COHORT_CSV)
            from chaoyang_desktop.export.cohort_pdf import write_cohort_pdf

            snap = self.runner.snapshot
            pairs = snap.settings_pairs(self.runner.profile, self.runner.device) if snap is not None else []
            colors = dict(zip(self.runner.profile.class_names, self.runner.profile.class_colors)) \
                if self.runner.profile is not None else None
            if colors is not None:
                colors.update({n: self.settings.class_color(n, c) for n, c in colors.items()})
            write_cohort_pdf(entries, target / COHORT_PDF, settings=pairs, class_colors=colors,
                             title=self.windowTitle() or "Cohort summary")
            written.append(target / COHORT_PDF)
        except (ChaoyangError, OSError) as exc:
            self.error_raised.emit("Export failed", " ".join(str(exc).split()))
            return written
        self.exported.emit(str(target))
        return written

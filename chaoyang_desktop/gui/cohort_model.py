"""The cohort table: one row per slide (status, progress, tiles, class composition, time, reason).

:class:`CohortTableModel` holds the rows of the cohort window; the runner changes them, the
window's table shows them through :class:`CohortFilter`, which sorts by :data:`SORT_ROLE` (numbers
as numbers, statuses in :data:`~chaoyang_desktop.core.analysis.cohort.SLIDE_STATUSES` order) and
filters by status and by a class's share of the tissue. :data:`VALUE_ROLE` gives a cell's raw
value (a class's percent as the summary has it), for the filter and for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor

from chaoyang_desktop.core.analysis.cohort import (
    FINAL_STATUSES,
    SLIDE_DONE,
    SLIDE_FAILED,
    SLIDE_NEW,
    SLIDE_NO_TILES,
    SLIDE_OUT_OF_DOMAIN,
    SLIDE_QUEUED,
    SLIDE_RUNNING,
    SLIDE_STATUSES,
    SlideReport,
    format_duration,
)

#: The value a column sorts by (a number, or lower-case text).
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
#: A cell's raw value: a class's percent (float, None without numbers), the row's status, its path.
VALUE_ROLE = Qt.ItemDataRole.UserRole + 2

COL_SLIDE, COL_STATUS, COL_PROGRESS, COL_TILES = range(4)
#: Columns after the per-class ones (counted from the end).
TAIL_HEADERS = ("Time", "Reason")

#: Status colours: readable on a light and a dark background (the text says the status; colour only helps).
STATUS_COLORS = {SLIDE_NEW: "#808080", SLIDE_QUEUED: "#808080", SLIDE_RUNNING: "#1f77b4", SLIDE_DONE: "#2ca02c",
                 SLIDE_NO_TILES: "#d68910", SLIDE_OUT_OF_DOMAIN: "#d68910", SLIDE_FAILED: "#d62728"}


@dataclass
class CohortRow:
    """One slide of the cohort, as the table shows it (changed only through the model)."""

    path: str
    label: str
    status: str = SLIDE_NEW
    #: Tiles done and in all, of the running (or paused) slide.
    done: int = 0
    total: int = 0
    elapsed_s: float = 0.0
    report: SlideReport | None = None
    #: Where it runs or what happened on the way ("worker 2 on node 10.0.0.3", "worker lost, tried again").
    note: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    def percent(self, name: str) -> float | None:
        """``name``'s share of the analysed area (None when the slide has no numbers)."""
        if self.report is None or self.report.summary is None:
            return None
        return self.report.composition().get(name)


class CohortTableModel(QAbstractTableModel):
    """The rows of a cohort and their columns (the class columns follow the model's classes)."""

    def __init__(self, class_names: tuple[str, ...], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[CohortRow] = []
        self.class_names = tuple(class_names)
        self.folder: Path | None = None

    # ----- changing it -----------------------------------------------------------------------------------
    def set_slides(self, paths: list[str], folder: Path | None) -> None:
        self.beginResetModel()
        self.folder = folder
        self.rows = [CohortRow(str(p), _label(Path(p), folder)) for p in paths]
        self.endResetModel()

    def set_class_names(self, names: tuple[str, ...]) -> None:
        """Other classes (a model was loaded or changed): their columns replace the old ones."""
        names = tuple(names)
        if names != self.class_names:
            self.beginResetModel()
            self.class_names = names
            self.endResetModel()

    def update(self, row: int, **changes: Any) -> None:
        """Change fields of one row and repaint it."""
        r = self.rows[row]
        for key, value in changes.items():
            setattr(r, key, value)
        self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

    def row_of(self, path: str) -> int:
        for i, r in enumerate(self.rows):
            if r.path == path:
                return i
        return -1

    def count(self, *statuses: str) -> int:
        return sum(r.status in statuses for r in self.rows)

    def finished(self) -> int:
        return self.count(*FINAL_STATUSES)

    # ----- columns -----------------------------------------------------------------------------------------
    def class_column(self, name: str) -> int:
        return 4 + self.class_names.index(name)

    @property
    def col_time(self) -> int:
        return 4 + len(self.class_names)

    @property
    def col_reason(self) -> int:
        return 5 + len(self.class_names)

    def headers(self) -> list[str]:
        return ["Slide", "Status", "Progress", "Tiles", *(f"{n} %" for n in self.class_names), *TAIL_HEADERS]

    # ----- QAbstractTableModel ---------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else 6 + len(self.class_names)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers()[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            if 4 <= section < self.col_time:
                return f"Share of the analysed tissue classified {self.class_names[section - 4]}"
            return {COL_TILES: "Tissue tiles the model classifies on this slide",
                    self.col_time: "Time the model took on it (cached: read from the results cache)"}.get(section)
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, col)
        if role == SORT_ROLE:
            return self._sort_key(r, col)
        if role == VALUE_ROLE:
            return self._value(r, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(r, col)
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_STATUS:
            return QColor(STATUS_COLORS.get(r.status, "#808080"))
        if role == Qt.ItemDataRole.ForegroundRole and col == self.col_reason and r.status not in FINAL_STATUSES:
            return QColor("#808080")  # a note on the way, not a failure
        if role == Qt.ItemDataRole.TextAlignmentRole and col not in (COL_SLIDE, COL_STATUS, self.col_reason):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, r: CohortRow, col: int) -> str:
        if col == COL_SLIDE:
            return r.label
        if col == COL_STATUS:
            if r.status == SLIDE_DONE and r.report is not None and r.report.from_cache:
                return "done (cached)"
            return r.status
        if col == COL_PROGRESS:
            if r.status == SLIDE_RUNNING or (r.status == SLIDE_QUEUED and r.done):
                return f"{100 * r.fraction:.0f} %" if r.total else "\u2026"
            return ""
        if col == COL_TILES:
            tiles = self._value(r, col)
            return f"{tiles:,}" if tiles is not None else ""
        if col == self.col_time:
            if r.status == SLIDE_RUNNING and r.elapsed_s:
                return format_duration(r.elapsed_s)
            if r.report is None or r.status != SLIDE_DONE:
                return ""  # a refused or unreadable slide took no model time worth showing
            if r.report.from_cache:
                return "cached"
            return format_duration(r.report.seconds) if r.report.seconds >= 1 else "< 1 s"
        if col == self.col_reason:
            if r.status in FINAL_STATUSES:
                return _first_line(r.report.error) if r.report is not None else ""
            return r.note
        p = r.percent(self.class_names[col - 4])
        return "" if p is None else f"{p:.1f}"

    def _value(self, r: CohortRow, col: int) -> Any:
        if col == COL_SLIDE:
            return r.path
        if col == COL_STATUS:
            return r.status
        if col == COL_PROGRESS:
            return r.fraction
        if col == COL_TILES:
            if r.report is not None and r.report.summary is not None:
                return int(r.report.summary["tiles_total"])
            return r.total or None
        if col == self.col_time:
            return r.report.seconds if r.report is not None else None
        if col == self.col_reason:
            return r.report.error if r.report is not None else r.note
        return r.percent(self.class_names[col - 4])

    def _sort_key(self, r: CohortRow, col: int) -> Any:
        if col == COL_SLIDE:
            return r.label.lower()
        if col == COL_STATUS:
            return SLIDE_STATUSES.index(r.status)
        value = self._value(r, col)
        if col == self.col_reason:
            return str(value or "").lower()
        return -1.0 if value is None else float(value)  # slides without numbers sort below every number

    def _tooltip(self, r: CohortRow, col: int) -> str | None:
        if col == COL_SLIDE:
            return r.path
        if col == COL_STATUS and r.report is not None:
            where = f" on {r.report.worker}" if r.report.worker else ""
            tries = f", {r.report.attempts} attempts" if r.report.attempts > 1 else ""
            return f"{r.status}{where}{tries}" + (" (result read from the results cache)" if r.report.from_cache else "")
        if col == COL_TILES and r.report is not None and r.report.summary is not None:
            s = r.report.summary
            return (f"{s['tiles_total']:,} tissue tiles: {s['tiles_done']:,} classified, {s.get('tiles_qc', 0):,} left "
                    f"out by quality control, {s['tiles_failed']:,} unreadable")
        if col == self.col_reason:
            text = self._value(r, col)
            if text and r.status == SLIDE_OUT_OF_DOMAIN:
                text += ("\n\nTo analyse it anyway, open it (double-click) and choose Analyze Anyway: the summary, "
                         "exports and report then say so.")
            return text or None
        return None


class CohortFilter(QSortFilterProxyModel):
    """Sorts the cohort by :data:`SORT_ROLE` and shows only rows of a status, or with a class at or above a share."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.status: str | None = None
        self.class_name: str | None = None
        self.min_percent = 0.0

    def set_status(self, status: str | None) -> None:
        """Only rows of ``status`` (None: every row)."""
        self.status = status or None
        self.invalidate()  # invalidateFilter is deprecated in Qt 6.10

    def set_class_minimum(self, name: str | None, percent: float) -> None:
        """Only rows whose ``name`` covers at least ``percent`` % of the analysed tissue (None: no such filter)."""
        self.class_name = name or None
        self.min_percent = float(percent)
        self.invalidate()  # invalidateFilter is deprecated in Qt 6.10

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        model = self.sourceModel()
        assert isinstance(model, CohortTableModel)
        r = model.rows[source_row]
        if self.status is not None and r.status != self.status:
            return False
        if self.class_name is not None:
            p = r.percent(self.class_name)
            if p is None or p < self.min_percent:
                return False
        return True

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if type(a) is not type(b):  # never compare a number with text
            return str(a) < str(b)
        if a == b:  # ties in slide order, whichever way the column sorts
            return left.row() < right.row()
        return bool(a < b)


def _label(path: Path, folder: Path | None) -> str:
    try:
        return str(path.relative_to(folder)) if folder is not None else path.name
    except ValueError:
        return path.name


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""

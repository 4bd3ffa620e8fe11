"""The summary panel: per class tiles, area, share of analysed tissue and mean confidence.

Every number comes from :meth:`AnalysisResult.summary`, the one source the CLI, the exports and
the report use too; the panel only formats it. It is refreshed with the heatmap while an
analysis runs.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from chaoyang_desktop.gui.overlay_panel import swatch_icon

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.composition import AnnotationComposition

#: Classes listed per annotation (the largest first); the rest are in summary.json and the report.
TOP_CLASSES = 3
#: Annotations listed here; the others are in the report and summary.json (the dock must not grow
#: past the screen).
MAX_ANNOTATION_LINES = 8

COLUMNS = ("Class", "Tiles", "mm\u00b2", "% area", "Conf.")
COLUMN_TIPS = ("Top class of each tile", "Tiles whose top class this is", "Area in square millimetres",
               "Share of the analysed tissue area", "Mean top-class probability of these tiles")


def quality_text(summary: dict[str, Any]) -> tuple[str, str]:
    """What quality control left out and how much tissue the model is unsure about: one short
    line (the dock is narrow), and the full story for its tooltip."""
    short, full = [], []
    if summary.get("tiles_qc"):
        reasons = ", ".join(f"{n} {name}" for name, n in summary.get("qc_by_reason", {}).items() if n)
        short.append(f"QC left out {summary['tiles_qc']:,}")
        full.append(f"Quality control left {summary['tiles_qc']:,} tiles unclassified ({reasons}); "
                    "they are dark grey on the heatmap.")
    unsure = summary.get("uncertainty") or {}
    if summary.get("tiles_done") and unsure:
        short.append(f"unsure {unsure['unsure_percent']:.0f}%")
        full.append(f"The model is unsure on {unsure['unsure_percent']:.1f}% of the analysed tissue: its top two "
                    f"classes are within {unsure['margin_threshold']:.2f} of each other there.")
    return " \u00b7 ".join(short), "\n".join(full)


class SummaryPanel(QWidget):
    """A small table plus one line of totals."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for c, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(c).setToolTip(tip)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table)
        self.totals = QLabel("No analysis yet. Press Analyze to classify the tissue.")
        self.totals.setWordWrap(True)
        layout.addWidget(self.totals)
        # Shown when the slide was analysed although the input check refused it: hard to miss.
        self.warning = QLabel()
        # Quality control and uncertainty: what was left out, and how much the model is unsure of.
        self.quality = QLabel()
        self.quality.setObjectName("summary_quality")
        self.quality.setWordWrap(True)
        self.quality.hide()
        layout.addWidget(self.quality)
        self.warning.setObjectName("summary_warning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("QLabel { color: #8a4b00; background: #fff3dc; border: 1px solid #d9822b; "
                                   "border-radius: 3px; padding: 4px; }")
        self.warning.hide()
        layout.addWidget(self.warning)
        # Per-annotation composition: what a pathologist reads off each outlined area.
        self.annotations = QLabel()
        self.annotations.setObjectName("summary_annotations")
        self.annotations.setWordWrap(True)
        self.annotations.setTextFormat(Qt.TextFormat.RichText)
        self.annotations.hide()
        layout.addWidget(self.annotations)
        layout.addStretch(1)
        self.compositions: list[AnnotationComposition] = []
        self._summary: dict[str, Any] | None = None
        self.table.hide()

    @property
    def summary(self) -> dict[str, Any] | None:
        return self._summary

    def clear(self, message: str = "No analysis yet. Press Analyze to classify the tissue.") -> None:
        self._summary = None
        self.table.setRowCount(0)
        self.table.hide()
        self.totals.setText(message)
        self.quality.hide()
        self.warning.hide()
        self.set_compositions([])

    def set_compositions(self, compositions: Sequence[AnnotationComposition]) -> None:
        """One line per annotation: its area, its tiles and its largest classes."""
        self.compositions = list(compositions)
        lines = []
        for c in self.compositions[:MAX_ANNOTATION_LINES]:
            if c.analysed_area_mm2 <= 0:
                parts = "no analysed tissue inside"
            else:
                top = sorted(c.classes, key=lambda k: -k["percent"])[:TOP_CLASSES]
                parts = ", ".join(f"<span style='color:{k['color']}'>\u25a0</span> {html.escape(k['name'])} "
                                  f"{k['percent']:.0f}%" for k in top if k["percent"] > 0)
            tiles = f", {c.tiles:,} tile{'s' if c.tiles != 1 else ''}" if c.tiles else ""
            lines.append(f"<b>{html.escape(c.name)}</b> ({c.area_mm2:.3f} mm\u00b2{tiles}): {parts}")
        if len(self.compositions) > MAX_ANNOTATION_LINES:
            lines.append(f"<i>and {len(self.compositions) - MAX_ANNOTATION_LINES} more: see the report</i>")
        self.annotations.setText("<b>Annotations</b><br>" + "<br>".join(lines) if lines else "")
        self.annotations.setVisible(bool(lines))
        self._fit_height()

    def set_summary(self, summary: dict[str, Any], colors: tuple[str, ...] | None = None, note: str = "",
                    warning: str = "") -> None:
        self._summary = summary
        self.table.show()
        classes = summary["classes"]
        self.table.setRowCount(len(classes))
        for r, c in enumerate(classes):
            color = colors[r] if colors is not None and r < len(colors) else c["color"]
            name = QTableWidgetItem(swatch_icon(color), c["name"])
            conf = c["mean_confidence"]
            cells = [name, QTableWidgetItem(f"{c['tiles']:,}"), QTableWidgetItem(f"{c['area_mm2']:.3f}"),
                     QTableWidgetItem(f"{c['percent']:.1f}"), QTableWidgetItem("\u2013" if conf is None else f"{conf:.2f}")]
            for col, item in enumerate(cells):
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, col, item)
        done, total = summary["tiles_done"], summary["tiles_total"]
        parts = [f"Analysed tissue {summary['analysed_area_mm2']:.3f} mm\u00b2", f"{done:,} of {total:,} tiles done"]
        if summary["tiles_failed"]:
            parts.append(f"{summary['tiles_failed']:,} failed")
        text = " \u00b7 ".join(parts)
        self.totals.setText(text + (f"\n{note}" if note else ""))
        line, story = quality_text(summary)
        self.quality.setText(line[:1].upper() + line[1:])
        self.quality.setToolTip(story)
        self.quality.setVisible(bool(line))
        self.warning.setText(warning)
        self.warning.setVisible(bool(warning))
        self._fit_height()

    def _fit_height(self) -> None:
        rows = self.table.rowCount()
        h = self.table.horizontalHeader().height() + sum(self.table.rowHeight(r) for r in range(rows)) + 4
        self.table.setFixedHeight(max(h, self.table.horizontalHeader().height() + 4))
        # Word-wrapped labels need more height the narrower the dock; the dock area does not ask
        # them (no height-for-width there), so the panel claims it, or the text overlaps the table.
        width = max(120, self.width() - 12)
        needed = 12 + (self.table.height() + 6 if self.table.isVisibleTo(self) else 0)
        for label in (self.totals, self.quality, self.warning, self.annotations):
            if label.isVisibleTo(self):
                needed += label.heightForWidth(width) + 6
        self.setMinimumHeight(needed)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_height()

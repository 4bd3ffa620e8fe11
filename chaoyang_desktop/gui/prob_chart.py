"""A horizontal bar chart of class probabilities, painted with QPainter (no QtCharts needed)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget


class ProbabilityChart(QWidget):
    """One bar per class in the class colour, the value at its end, the top class in bold."""

    ROW = 22

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._names: tuple[str, ...] = ()
        self._colors: tuple[str, ...] = ()
        self._probs: tuple[float, ...] = ()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_values(self, names: Sequence[str], colors: Sequence[str], probs: Sequence[float] | None) -> None:
        self._names, self._colors = tuple(names), tuple(colors)
        self._probs = tuple(float(p) for p in probs) if probs is not None else ()
        self.setFixedHeight(max(1, len(self._names)) * self.ROW + 6)
        self.update()

    @property
    def values(self) -> tuple[float, ...]:
        return self._probs

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(260, max(1, len(self._names)) * self.ROW + 6)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = p.fontMetrics()
        bold_font = QFont(self.font())
        bold_font.setBold(True)
        bold_fm = QFontMetrics(bold_font)  # the top class is drawn bold: measure every name so
        name_w = max([bold_fm.horizontalAdvance(n) for n in self._names] + [40]) + 8
        value_w = fm.horizontalAdvance("100.0%") + 6
        bar_x = name_w
        bar_w = max(10.0, self.width() - name_w - value_w - 4)
        top = max(range(len(self._probs)), key=lambda k: self._probs[k]) if self._probs else -1
        text_color = self.palette().windowText().color()
        for k, name in enumerate(self._names):
            y = 3 + k * self.ROW
            bold = QFont(self.font())
            bold.setBold(k == top)
            p.setFont(bold)
            p.setPen(text_color)
            p.drawText(QRectF(0, y, name_w - 6, self.ROW), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, name)
            track = QRectF(bar_x, y + 4, bar_w, self.ROW - 8)
            p.fillRect(track, QColor(128, 128, 128, 40))
            if self._probs:
                value = min(1.0, max(0.0, self._probs[k]))
                color = QColor(self._colors[k]) if k < len(self._colors) else QColor(120, 120, 120)
                p.fillRect(QRectF(track.x(), track.y(), track.width() * value, track.height()), color)
                p.setPen(text_color)
                p.drawText(QRectF(bar_x + bar_w + 4, y, value_w, self.ROW),
                           Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, f"{value * 100:.1f}%")
        p.end()

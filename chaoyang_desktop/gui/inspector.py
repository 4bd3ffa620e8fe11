"""The inspector: the clicked tile at full resolution, what the model said about it, and where it is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from chaoyang_desktop.core.analysis.results import UNSURE_MARGIN
from chaoyang_desktop.export.report_data import format_um, set_um
from chaoyang_desktop.gui.prob_chart import ProbabilityChart
from chaoyang_desktop.gui.tile_loader import rgb_to_qimage


@dataclass(frozen=True)
class TileInfo:
    """One tile of an analysis, as the inspector shows it."""

    index: int
    t_col: int
    t_row: int
    l0_rect: tuple[int, int, int, int]
    tile_um: float
    status: str  # "done", "pending", "failed" or "qc"
    probs: tuple[float, ...] | None
    error: str | None
    class_names: tuple[str, ...]
    class_colors: tuple[str, ...]
    tissue: float
    #: Why quality control left the tile out, in words ("pen ink, out of focus"); empty otherwise.
    qc: str = ""
    #: Normalised entropy, top-1 minus top-2 margin and TTA spread of the top class (done tiles).
    entropy: float | None = None
    margin: float | None = None
    spread: float | None = None


class TileImage(QWidget):
    """A square picture as large as the room it is given (the tile keeps its aspect ratio)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._img: QImage | None = None
        self._message = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 120)

    def sizeHint(self) -> QSize:  # noqa: N802
        # Small, so the chart below stays in view in a short dock; the picture grows into any room left.
        return QSize(160, 160)

    def set_image(self, img: QImage | None, message: str = "") -> None:
        self._img, self._message = img, message
        self.update()

    @property
    def image(self) -> QImage | None:
        return self._img

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        side = min(self.width(), self.height(), 512)
        box = QRectF((self.width() - side) / 2, 0, side, side)
        p.fillRect(box, QColor(235, 235, 235))
        if self._img is not None and not self._img.isNull():
            size = QSize(self._img.width(), self._img.height()).scaled(int(side), int(side), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRectF(box.x() + (side - size.width()) / 2, (side - size.height()) / 2, size.width(), size.height())
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(target, self._img)
        else:
            p.setPen(QColor(100, 100, 100))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
        p.end()


class Inspector(QWidget):
    """Shows one tile: picture, probabilities (bar chart) and facts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.picture = TileImage()
        self.chart = ProbabilityChart()
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Picture above the chart in a tall dock; beside it in a wide, short one (a 1024 x 700 window
        # leaves the inspector about 140 px high: stacked, the picture had almost nothing).
        self.body = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self.body.addWidget(self.picture, 1)
        facts = QVBoxLayout()
        facts.addWidget(self.chart)
        facts.addWidget(self.details)
        facts.addStretch(0)
        self.body.addLayout(facts)
        layout.addLayout(self.body, 1)
        self.info: TileInfo | None = None
        self.clear()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        wide = self.width() > 1.6 * self.height()
        direction = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if self.body.direction() != direction:
            self.body.setDirection(direction)

    def clear(self, message: str = "Click a tile of the heatmap to inspect it.") -> None:
        self.info = None
        self.title.setText("")
        self.picture.set_image(None, message)
        self.chart.set_values((), (), None)
        self.chart.hide()
        self.details.setText("")

    def show_tile(self, info: TileInfo) -> None:
        self.info = info
        x, y, w, h = info.l0_rect
        if info.status == "done" and info.probs is not None:
            top = int(np.argmax(info.probs))
            head = (f"<b><span style='color:{info.class_colors[top]}'>\u25a0</span> {info.class_names[top]}</b>"
                    f" &nbsp;{100 * info.probs[top]:.1f}%")
        elif info.status == "failed":
            head = "<b>Tile could not be read</b>"
        elif info.status == "qc":
            head = f"<b>Not classified: {info.qc}</b>"
        else:
            head = "<b>Not analysed yet</b>"
        self.title.setText(head)
        self.picture.set_image(None, "Reading the tile\u2026")
        self.chart.set_values(info.class_names, info.class_colors, info.probs)
        self.chart.setVisible(info.probs is not None)
        lines = [f"Tile column {info.t_col}, row {info.t_row}",
                 f"Level-0 x {x:,}\u2013{x + w:,}, y {y:,}\u2013{y + h:,} px",
                 f"{format_um(set_um(info.tile_um, info.tile_um / max(1, w, h)))} \u00b5m field of view \u00b7 tissue {100 * info.tissue:.0f}%"]
        if info.margin is not None and info.entropy is not None:
            unsure = " (unsure)" if info.margin < UNSURE_MARGIN else ""
            lines.append(f"Margin {info.margin:.2f}{unsure} \u00b7 entropy {info.entropy:.2f}"
                         + (f" \u00b7 TTA spread {info.spread:.2f}" if info.spread is not None else ""))
        if info.status == "qc":
            lines.append("Quality control left this tile out; turn it off in Settings to classify every tile.")
        if info.error:
            lines.append(f"Error: {info.error}")
        self.details.setText("\n".join(lines))

    def set_pixels(self, rgb: np.ndarray) -> None:
        self.picture.set_image(rgb_to_qimage(rgb))

    def set_pixels_failed(self, message: str) -> None:
        self.picture.set_image(None, f"Cannot read this tile: {message}")

    def set_classes(self, names: Sequence[str], colors: Sequence[str]) -> None:
        """Colours changed: redraw the chart of the tile shown."""
        if self.info is not None:
            self.chart.set_values(names, colors, self.info.probs)

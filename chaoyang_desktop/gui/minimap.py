"""The minimap: the whole slide small, with the heatmap, the annotations and the viewport; click to move.

It floats in the top-right corner of the slide view. Its picture is the slide thumbnail the view
already has; the rectangle is derived from the shared :class:`ViewState`.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QWidget

from chaoyang_desktop.gui.view_state import ViewState

#: Longest side of the minimap picture, in pixels.
MAX_SIDE = 190


class Minimap(QWidget):
    """Thumbnail + overlay + viewport outline; a click or drag centres the view there."""

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._thumb: QImage | None = None
        self._overlay: QImage | None = None
        self._overlay_l0_size: tuple[float, float] = (1.0, 1.0)
        #: Annotation outlines: level-0 rings and their colours (where the marked areas lie).
        self._outlines: list[tuple[np.ndarray, QColor]] = []
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview: click or drag to move the view")
        state.changed.connect(self.update)
        self.hide()

    def set_thumbnail(self, thumb: QImage | None) -> None:
        self._thumb = thumb
        if thumb is None or thumb.isNull():
            self.hide()
            return
        size = QSize(thumb.width(), thumb.height()).scaled(MAX_SIDE, MAX_SIDE, Qt.AspectRatioMode.KeepAspectRatio)
        # Reduced once with Qt's smooth (area-averaging) scaling: drawing the 2048 px thumbnail
        # into ~200 px with bilinear sampling aliased it (issue 15).
        self._thumb = thumb.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.setFixedSize(size.width() + 4, size.height() + 4)
        self.show()
        self.update()

    def set_overlay(self, image: QImage | None, l0_size: tuple[float, float] = (1.0, 1.0)) -> None:
        """The heatmap image and the level-0 size it spans (cells may run past the slide edge)."""
        self._overlay = image
        self._overlay_l0_size = l0_size
        self.update()

    def set_outlines(self, outlines: list[tuple[np.ndarray, QColor]]) -> None:
        """Annotation outlines to draw: ``(ring, colour)`` with rings as ``(M, 2)`` level-0 points."""
        self._outlines = outlines
        self.update()

    def outlines(self) -> list[tuple[np.ndarray, QColor]]:
        return list(self._outlines)

    def _picture_rect(self) -> QRectF:
        return QRectF(2, 2, self.width() - 4, self.height() - 4)

    def _to_l0(self, pos: QPointF) -> tuple[float, float]:
        r = self._picture_rect()
        fx = (pos.x() - r.x()) / r.width()
        fy = (pos.y() - r.y()) / r.height()
        return fx * self._state.l0_width, fy * self._state.l0_height

    def viewport_rect(self) -> QRectF:
        """The view's visible area in minimap pixels."""
        r = self._picture_rect()
        sx = r.width() / self._state.l0_width
        sy = r.height() / self._state.l0_height
        x0, y0, x1, y1 = self._state.visible_l0_rect()
        return QRectF(r.x() + x0 * sx, r.y() + y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        if self._thumb is None:
            return
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        r = self._picture_rect()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(r, self._thumb)
        if self._overlay is not None and not self._overlay.isNull():
            sx = r.width() / self._state.l0_width
            sy = r.height() / self._state.l0_height
            target = QRectF(r.x(), r.y(), self._overlay_l0_size[0] * sx, self._overlay_l0_size[1] * sy)
            p.save()
            p.setClipRect(r)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            p.drawImage(target, self._overlay)
            p.restore()
        if self._outlines:
            sx = r.width() / self._state.l0_width
            sy = r.height() / self._state.l0_height
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setBrush(Qt.BrushStyle.NoBrush)
            for ring, color in self._outlines:
                p.setPen(QPen(color, 1.5))
                p.drawPolygon(QPolygonF([QPointF(r.x() + x * sx, r.y() + y * sy) for x, y in ring]))
        vr = self.viewport_rect().intersected(r)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(255, 255, 255), 3))
        p.drawRect(vr)
        p.setPen(QPen(QColor(0, 90, 200), 1.5))
        p.drawRect(vr)
        p.setPen(QPen(QColor(90, 90, 90), 1))
        p.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5))
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._state.center_on(*self._to_l0(event.position()))
            event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._state.center_on(*self._to_l0(event.position()))
            event.accept()
